//! The one error type of the crate. Its variants are the WIT `error` variants one for one, so the
//! bindings glue converts without losing meaning.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a well-formed TFLite flatbuffer, or they contradict themselves.
    #[error("malformed model: {0}")]
    MalformedModel(String),
    /// Well-formed, but uses something this executor does not implement (named in the message).
    #[error("unsupported model: {0}")]
    UnsupportedModel(String),
    /// The image bytes could not be decoded.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// A tensor, option or argument that does not fit the model.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Refused before allocating: the model or input asks for more memory than we allow.
    #[error("too large: {0}")]
    TooLarge(String),
}

pub type Result<T, E = Error> = core::result::Result<T, E>;

macro_rules! bail {
    ($variant:ident, $($arg:tt)*) => {
        return Err($crate::error::Error::$variant(format!($($arg)*)))
    };
}
pub(crate) use bail;
