//! Predicates for `skip_serializing_if`, matching Go's `omitempty`.

/// Go omits `false` booleans.
pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// Go omits zero integers.
pub(crate) fn is_zero(n: &i32) -> bool {
    *n == 0
}
