//! A wasi-nn guest written against the standard WIT only (world `wasi:nn/ml`): it knows nothing of
//! edge-classify. Composed with `dist/wasi-nn.wasm` (`cargo xtask compose`), it runs on any WASI host.
//!
//! ```text
//! wasi-nn-classify (--model FILE.tflite | --name NAME) [--options TEXT] [--encoding tensorflowlite|autodetect|onnx]
//!                  [--target cpu|gpu|tpu] [--dims 1,224,224,3] (--image PHOTO [--labels FILE] [--top 5]
//!                  | --type u8|fp32 --input FILE ...)
//! ```
//!
//! `--image` decodes and resizes a photo to `--dims` (NHWC, default `1,224,224,3`) and feeds its
//! pixels as U8, then prints the top classes (`index value label`). `--input` feeds each file's
//! little-endian bytes as a tensor of `--type` and `--dims` and prints the output:
//! `output NAME U8|FP32 [DIMS]` then one `values ...` line (FP32 in Rust's shortest round-trip form).
//! Errors: `error: CODE: MESSAGE` on stderr, exit status 1.

#[cfg(target_arch = "wasm32")]
wit_bindgen::generate!({ path: "../../wit/deps/wasi-nn", world: "ml" });

#[cfg(target_arch = "wasm32")]
fn main() {
    if let Err(e) = guest::run(std::env::args().skip(1).collect()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("wasi-nn-classify is a wasm32-wasip2 component: `cargo xtask dist` builds it");
    std::process::exit(2);
}

#[cfg(target_arch = "wasm32")]
mod guest {
    use super::wasi::nn::{errors, graph, tensor};

    #[derive(Default)]
    struct Args {
        model: Option<String>,
        name: Option<String>,
        options: Option<String>,
        encoding: Option<String>,
        target: Option<String>,
        dims: Option<String>,
        image: Option<String>,
        labels: Option<String>,
        top: Option<String>,
        ty: Option<String>,
        inputs: Vec<String>,
    }

    fn parse(args: Vec<String>) -> Result<Args, String> {
        let mut a = Args::default();
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--model" => a.model = Some(value()?),
                "--name" => a.name = Some(value()?),
                "--options" => a.options = Some(value()?),
                "--encoding" => a.encoding = Some(value()?),
                "--target" => a.target = Some(value()?),
                "--dims" => a.dims = Some(value()?),
                "--image" => a.image = Some(value()?),
                "--labels" => a.labels = Some(value()?),
                "--top" => a.top = Some(value()?),
                "--type" => a.ty = Some(value()?),
                "--input" => a.inputs.push(value()?),
                other => return Err(format!("unknown argument {other} (see the source's header for usage)")),
            }
        }
        Ok(a)
    }

    fn nn(e: errors::Error) -> String {
        use errors::ErrorCode as C;
        let code = match e.code() {
            C::InvalidArgument => "invalid-argument",
            C::InvalidEncoding => "invalid-encoding",
            C::Timeout => "timeout",
            C::RuntimeError => "runtime-error",
            C::UnsupportedOperation => "unsupported-operation",
            C::TooLarge => "too-large",
            C::NotFound => "not-found",
            C::Security => "security",
            C::Unknown => "unknown",
        };
        format!("{code}: {}", e.data())
    }

    fn read(path: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))
    }

    pub fn run(args: Vec<String>) -> Result<(), String> {
        let a = parse(args)?;
        let encoding = match a.encoding.as_deref().unwrap_or("tensorflowlite") {
            "tensorflowlite" => graph::GraphEncoding::Tensorflowlite,
            "autodetect" => graph::GraphEncoding::Autodetect,
            "onnx" => graph::GraphEncoding::Onnx,
            "openvino" => graph::GraphEncoding::Openvino,
            e => return Err(format!("--encoding {e}: tensorflowlite, autodetect, onnx or openvino")),
        };
        let target = match a.target.as_deref().unwrap_or("cpu") {
            "cpu" => graph::ExecutionTarget::Cpu,
            "gpu" => graph::ExecutionTarget::Gpu,
            "tpu" => graph::ExecutionTarget::Tpu,
            t => return Err(format!("--target {t}: cpu, gpu or tpu")),
        };
        let graph = match (&a.model, &a.name) {
            (Some(path), None) => {
                let mut builders = vec![read(path)?];
                builders.extend(a.options.as_ref().map(|o| o.as_bytes().to_vec()));
                graph::load(&builders, encoding, target).map_err(nn)?
            }
            (None, Some(name)) => graph::load_by_name(name).map_err(nn)?,
            _ => return Err("give --model FILE or --name NAME".into()),
        };
        let context = graph.init_execution_context().map_err(nn)?;
        let dims: Vec<u32> = a
            .dims
            .as_deref()
            .unwrap_or("1,224,224,3")
            .split(',')
            .map(|d| d.trim().parse().map_err(|_| format!("--dims: {d:?} is not a number")))
            .collect::<Result<_, _>>()?;
        if let Some(photo) = &a.image {
            let [_, h, w, 3] = dims[..] else { return Err(format!("--image needs --dims 1,H,W,3, not {dims:?}")) };
            let decoded = image::load_from_memory(&read(photo)?).map_err(|e| format!("decoding {photo}: {e}"))?;
            let rgb = image::imageops::resize(&decoded.to_rgb8(), w, h, image::imageops::FilterType::Triangle);
            let input = tensor::Tensor::new(&dims, tensor::TensorType::U8, &rgb.into_raw());
            let outputs = context.compute(vec![("input".into(), input)]).map_err(nn)?;
            let (_, output) = outputs.into_iter().next().ok_or("the graph gave no output")?;
            let scores = values(&output);
            let labels = match &a.labels {
                Some(l) => String::from_utf8_lossy(&read(l)?).lines().map(str::to_owned).collect(),
                None => Vec::new(),
            };
            let top: usize = a.top.as_deref().unwrap_or("5").parse().map_err(|_| "--top is not a number")?;
            let mut order: Vec<usize> = (0..scores.len()).collect();
            order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]).then(x.cmp(&y)));
            for &i in order.iter().take(top) {
                println!("{i} {} {}", scores[i], labels.get(i).map(String::as_str).unwrap_or(""));
            }
            return Ok(());
        }
        let ty = match a.ty.as_deref() {
            Some("u8") => tensor::TensorType::U8,
            Some("fp32") => tensor::TensorType::Fp32,
            // Types the provider refuses, to see how it refuses them.
            Some("fp16") => tensor::TensorType::Fp16,
            Some("i32") => tensor::TensorType::I32,
            t => return Err(format!("--type {t:?}: u8, fp32, fp16 or i32 (with --input)")),
        };
        if a.inputs.is_empty() {
            return Err("give --image PHOTO or --input FILE".into());
        }
        for path in &a.inputs {
            let input = tensor::Tensor::new(&dims, ty, &read(path)?);
            for (name, output) in context.compute(vec![("input".into(), input)]).map_err(nn)? {
                let ty = if output.ty() == tensor::TensorType::U8 { "U8" } else { "FP32" };
                println!("output {name} {ty} {:?}", output.dimensions());
                let v: Vec<String> = values(&output).iter().map(f32::to_string).collect();
                println!("values {}", v.join(" "));
            }
        }
        Ok(())
    }

    /// An output's elements as f32 (U8 ones as their integer values).
    fn values(t: &tensor::Tensor) -> Vec<f32> {
        let data = t.data();
        match t.ty() {
            tensor::TensorType::U8 => data.iter().map(|&b| b as f32).collect(),
            _ => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        }
    }
}
