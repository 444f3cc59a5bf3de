//! Command-line arguments, parsed by hand: four options do not justify a parser crate in a
//! component that should stay small.

pub use edge_classify::model::Precision;

/// The `--help` text.
pub fn usage() -> String {
    let precisions = Precision::ALL.map(Precision::name).join("|");
    format!(
        "usage: classify [--model FILE.tflite] [--labels FILE.txt] [--precision {precisions}] [--top N] [--json] IMAGE..."
    )
}

/// Predictions shown per image when `--top` is not given.
pub const DEFAULT_TOP: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `None`: the model embedded in the classifier.
    pub model: Option<String>,
    pub labels: Option<String>,
    pub precision: Option<Precision>,
    pub top: u32,
    pub json: bool,
    pub images: Vec<String>,
}

/// What the command line asked for: a run, or the usage text.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
}

/// Parses the arguments after the program name. Errors are one line, ready for stderr.
pub fn parse(argv: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut args = Args { model: None, labels: None, precision: None, top: DEFAULT_TOP, json: false, images: vec![] };
    let mut it = argv.into_iter();
    let mut options_done = false;
    while let Some(arg) = it.next() {
        if options_done || !arg.starts_with("--") {
            args.images.push(arg);
            continue;
        }
        // `--name=value` and `--name value` both work, as users of other CLIs expect.
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--" => options_done = true,
            "--help" => return Ok(Parsed::Help),
            "--json" => args.json = true,
            "--model" => args.model = Some(value("--model")?),
            "--labels" => args.labels = Some(value("--labels")?),
            "--precision" => {
                let v = value("--precision")?;
                let p = Precision::parse(&v);
                args.precision =
                    Some(p.ok_or_else(|| format!("--precision must be {}, not {v:?}", Precision::choices()))?);
            }
            "--top" => {
                let v = value("--top")?;
                args.top = match v.parse::<u32>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--top must be a positive whole number, not {v:?}")),
                };
            }
            _ => return Err(format!("unknown option {name}")),
        }
    }
    if args.images.is_empty() {
        return Err("no image given".into());
    }
    Ok(Parsed::Run(args))
}

/// A score as printed in the human format: probabilities with four decimals.
pub fn human_line(label: Option<&str>, index: u32, score: f32) -> String {
    match label {
        Some(l) => format!("{l}  {score:.4}"),
        None => format!("class {index}  {score:.4}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(a: &[&str]) -> Result<Parsed, String> {
        parse(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_use_the_embedded_model() {
        let Parsed::Run(a) = parse_strs(&["/photos/cat.jpg"]).unwrap() else { panic!() };
        assert_eq!(a.model, None);
        assert_eq!(a.top, DEFAULT_TOP);
        assert!(!a.json);
        assert_eq!(a.images, ["/photos/cat.jpg"]);
    }

    #[test]
    fn every_option_in_both_spellings() {
        let Parsed::Run(a) = parse_strs(&[
            "--model",
            "/m.tflite",
            "--labels=/l.txt",
            "--precision",
            "int16",
            "--top=3",
            "--json",
            "a.png",
            "b.jpg",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(a.model.as_deref(), Some("/m.tflite"));
        assert_eq!(a.labels.as_deref(), Some("/l.txt"));
        assert_eq!(a.precision, Some(Precision::Int16));
        assert_eq!(a.top, 3);
        assert!(a.json);
        assert_eq!(a.images, ["a.png", "b.jpg"]);
    }

    #[test]
    fn double_dash_ends_options() {
        let Parsed::Run(a) = parse_strs(&["--", "--json"]).unwrap() else { panic!() };
        assert!(!a.json);
        assert_eq!(a.images, ["--json"]);
    }

    #[test]
    fn bad_arguments_are_one_line_errors() {
        for bad in [
            &[][..],
            &["--top", "0", "a"],
            &["--top", "x", "a"],
            &["--precision", "int4", "a"],
            &["--frob", "a"],
            &["a", "--model"],
        ] {
            let e = parse_strs(bad).unwrap_err();
            assert!(!e.is_empty() && !e.contains('\n'), "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn help() {
        assert_eq!(parse_strs(&["--help"]).unwrap(), Parsed::Help);
        assert!(usage().contains("[--precision fp32|int16|int8]"), "{}", usage());
    }
}
