//! Requests to answers, without any I/O.

/// Largest accepted image upload. The largest photo in the test set is 1.2 MB; 4 MiB leaves room
/// for phone JPEGs while bounding what one request can make an instance buffer.
pub const MAX_BODY_BYTES: usize = 4 << 20;

/// Predictions returned when the query has no `top`.
pub const DEFAULT_TOP: u32 = 5;

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Info,
    Classify,
    /// A known path with the wrong method; carries the allowed one.
    MethodNotAllowed(&'static str),
    NotFound,
}

pub fn route(method: &str, path: &str) -> Route {
    match (path, method) {
        ("/", "GET" | "HEAD") => Route::Info,
        ("/", _) => Route::MethodNotAllowed("GET"),
        ("/classify", "POST") => Route::Classify,
        ("/classify", _) => Route::MethodNotAllowed("POST"),
        _ => Route::NotFound,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    Fp32,
    Int16,
    Int8,
}

/// The models an app serves, by their query name (`model=`): the embedded ImageNet classifier and
/// the Visual Wake Words person detector (examples/doorbell's model, built into the app).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelName {
    Imagenet,
    Person,
}

impl ModelName {
    pub const ALL: [ModelName; 2] = [ModelName::Imagenet, ModelName::Person];

    pub fn name(self) -> &'static str {
        match self {
            ModelName::Imagenet => "imagenet",
            ModelName::Person => "person",
        }
    }
}

/// What `GET /` lists under `endpoints`.
pub const ENDPOINTS: [&str; 2] = ["GET /", "POST /classify?top=N&precision=fp32|int16|int8&model=imagenet|person"];

#[derive(Debug, PartialEq, Eq)]
pub struct Query {
    pub top: u32,
    pub precision: Option<Precision>,
    pub model: ModelName,
}

/// Parses `top`, `precision` and `model`; anything else in the query is refused, so a typo is not
/// silently ignored.
pub fn parse_query(query: Option<&str>) -> Result<Query, String> {
    let mut q = Query { top: DEFAULT_TOP, precision: None, model: ModelName::Imagenet };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "top" => {
                q.top = match value.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("top must be a positive whole number, not {value:?}")),
                }
            }
            "precision" => {
                q.precision = Some(match value {
                    "fp32" => Precision::Fp32,
                    "int16" => Precision::Int16,
                    "int8" => Precision::Int8,
                    _ => return Err(format!("precision must be fp32, int16 or int8, not {value:?}")),
                })
            }
            "model" => {
                q.model = match ModelName::ALL.into_iter().find(|m| m.name() == value) {
                    Some(m) => m,
                    None => {
                        let names = ModelName::ALL.map(ModelName::name).join(", ");
                        return Err(format!("model must be one of {names}, not {value:?}"));
                    }
                }
            }
            _ => return Err(format!("unknown query parameter {key:?} (known: top, precision, model)")),
        }
    }
    Ok(q)
}

/// The JSON body of every error answer.
pub fn error_body(status: u16, kind: &str, message: &str) -> String {
    serde_json::json!({"error": {"status": status, "kind": kind, "message": message}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("GET", "/"), Route::Info);
        assert_eq!(route("POST", "/classify"), Route::Classify);
        assert_eq!(route("GET", "/classify"), Route::MethodNotAllowed("POST"));
        assert_eq!(route("DELETE", "/"), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/nope"), Route::NotFound);
        assert_eq!(route("POST", "/classify/x"), Route::NotFound);
    }

    #[test]
    fn queries() {
        assert_eq!(parse_query(None).unwrap(), Query { top: DEFAULT_TOP, precision: None, model: ModelName::Imagenet });
        assert_eq!(
            parse_query(Some("top=3&precision=int8&model=person")).unwrap(),
            Query { top: 3, precision: Some(Precision::Int8), model: ModelName::Person }
        );
        for bad in ["top=0", "top=-1", "top=", "precision=int4", "k=v", "model=cat"] {
            assert!(parse_query(Some(bad)).is_err(), "{bad}");
        }
        for model in ModelName::ALL {
            assert_eq!(parse_query(Some(&format!("model={}", model.name()))).unwrap().model, model);
        }
    }

    #[test]
    fn the_endpoints_name_every_model() {
        let names = ModelName::ALL.map(ModelName::name).join("|");
        assert!(ENDPOINTS[1].ends_with(&format!("&model={names}")), "{}", ENDPOINTS[1]);
    }

    #[test]
    fn error_bodies_are_json() {
        let v: serde_json::Value =
            serde_json::from_str(&error_body(400, "invalid-image", "a \"quoted\" word")).unwrap();
        assert_eq!(v["error"]["status"], 400);
        assert_eq!(v["error"]["message"], "a \"quoted\" word");
    }
}
