//! The crate's one error type.
//!
//! Every variant names the SQL function, the argument and the offending value, so the
//! message a SQL user sees (`Execution error: healpix_cell: argument lat = 91 ...`) says
//! what to fix. The pure-Rust core uses the name of the SQL function it implements
//! (`healpix::cell` reports as `healpix_cell`, `morton::to_nested` as `morton_to_cell`).

use datafusion::error::DataFusionError;

/// Errors of the HEALPix, morton and aggregate functions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum UdfError {
    /// A latitude outside `-90..=90` degrees, or not a number.
    #[error("{function}: argument {argument} = {value} is not a latitude in -90..=90 degrees")]
    LatitudeOutOfRange {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// A longitude that is infinite or not a number (any finite value is wrapped).
    #[error("{function}: argument {argument} = {value} is not a finite longitude")]
    LongitudeNotFinite {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value.
        value: f64,
    },
    /// An order outside the range the function supports.
    #[error(
        "{function}: argument {argument} = {value} is out of range, expected an order in {min}..={max}"
    )]
    OrderOutOfRange {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value.
        value: i64,
        /// Smallest accepted order.
        min: u8,
        /// Largest accepted order.
        max: u8,
    },
    /// A nested cell id that does not exist at the given order (`>= 12 * 4^order`).
    #[error(
        "{function}: argument {argument} = {value} is not a cell at order {order}, expected 0..{n_cells}"
    )]
    CellOutOfRange {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value.
        value: u64,
        /// The order the cell was read at.
        order: u8,
        /// Number of cells at that order (`12 * 4^order`).
        n_cells: u64,
    },
    /// A number that is not a decimal morton index (REFERENCE.md section 2).
    #[error("{function}: argument {argument} = {value} is not a valid morton index: {reason}")]
    MalformedMorton {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value.
        value: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// Values of several orders where one order is required.
    #[error(
        "{function}: argument {argument} mixes orders: {first} is order {first_order} but {value} is order {order}; all values must have one order"
    )]
    MixedOrders {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The first value, which fixed the order.
        first: i64,
        /// Its order.
        first_order: u8,
        /// The value of another order.
        value: i64,
        /// Its order.
        order: u8,
    },
    /// Any other bad argument (a mode string, a non-constant argument, an order pair).
    #[error("{function}: argument {argument} = {value} is invalid, expected {expected}")]
    InvalidArgument {
        /// SQL function name.
        function: &'static str,
        /// Argument name.
        argument: &'static str,
        /// The rejected value, as text.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
}

impl From<UdfError> for DataFusionError {
    fn from(e: UdfError) -> Self {
        DataFusionError::Execution(e.to_string())
    }
}

/// Checks an order against `min..=max`.
pub(crate) fn check_order(
    function: &'static str,
    argument: &'static str,
    value: i64,
    min: u8,
    max: u8,
) -> Result<u8, UdfError> {
    if value < i64::from(min) || value > i64::from(max) {
        return Err(UdfError::OrderOutOfRange {
            function,
            argument,
            value,
            min,
            max,
        });
    }
    // In range, so it fits a u8.
    Ok(value as u8)
}
