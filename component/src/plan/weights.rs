//! The plan's constant arrays (filters, biases): owned after `load`, borrowed from static data when a
//! prepared model is restored from the component's own bytes (`crate::prepared`).
//!
//! They are not part of the plan's serde structure: [`VisitWeights`] walks them in one fixed order,
//! so the prepared model writes them as an aligned section beside the structure and puts them back.

use std::borrow::Cow;

use crate::error::Result;

/// Element types a weight array may have: plain numbers whose in-memory form, on a little-endian
/// target, is their little-endian bytes.
pub trait Pod: Copy + Default + core::fmt::Debug + PartialEq + 'static {
    const SIZE: usize;
    /// Names the type in a persisted weight table (sizes alone would confuse i32 and f32).
    const TAG: u8;
    fn write_le(self, out: &mut Vec<u8>);
    fn read_le(bytes: &[u8]) -> Self;
}

macro_rules! pod {
    ($($t:ty = $tag:literal),*) => {$(
        impl Pod for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            const TAG: u8 = $tag;
            fn write_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn read_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("caller passes SIZE bytes"))
            }
        }
    )*};
}
pod!(i8 = 1, i16 = 2, i32 = 3, i64 = 4, f32 = 5);

/// A constant array of a prepared step.
#[derive(Clone, PartialEq)]
pub struct Weights<T: Pod>(Cow<'static, [T]>);

impl<T: Pod> From<Vec<T>> for Weights<T> {
    fn from(v: Vec<T>) -> Self {
        Weights(Cow::Owned(v))
    }
}

impl<T: Pod> From<&'static [T]> for Weights<T> {
    fn from(v: &'static [T]) -> Self {
        Weights(Cow::Borrowed(v))
    }
}

/// Empty: what a deserialized plan holds until its weights are put back.
impl<T: Pod> Default for Weights<T> {
    fn default() -> Self {
        Weights(Cow::Borrowed(&[]))
    }
}

impl<T: Pod> core::ops::Deref for Weights<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

/// Megabytes of numbers say nothing in a debug print.
impl<T: Pod> core::fmt::Debug for Weights<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let how = if self.is_static() { "static" } else { "owned" };
        write!(f, "Weights<{}>[{}; {how}]", core::any::type_name::<T>(), self.0.len())
    }
}

impl<T: Pod> Weights<T> {
    /// Whether the array lives in static data (restored from an embedded model).
    pub fn is_static(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }
}

/// Called for every weight array of a plan, in plan order (a step's filter, then its bias, which may
/// be absent); may read or replace it.
pub trait VisitWeights {
    fn visit<T: Pod>(&mut self, weights: &mut Option<Weights<T>>) -> Result<()>;
}
