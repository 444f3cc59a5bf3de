//! `golden/manifest.json` and the files it points to.
//!
//! Paths in the manifest are relative to `golden/`; model, label and image file names are looked
//! up in the shared folder (see [`crate::paths`]). Model files are checked against the manifest's
//! sha256 so a comparison never runs against the wrong bytes.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::api::{ElementType, LoadOptions, ModelInfo, Precision, Tensor, TensorData};
use crate::npy::Npy;
use crate::paths;

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    /// How the reference outputs were produced (runtime, version, resolver, ...), kept as-is.
    pub reference: serde_json::Value,
    pub models: Vec<GoldenModel>,
    /// Our quantizer's outputs, as the golden script checked them against TFLite.
    #[serde(default)]
    pub quantized: Vec<QuantizedModel>,
}

/// The fp32 reference of a model for the fidelity checks: TFLite's float kernels on the model itself
/// (float models) or on the dequantized file `quantize(target = fp32)` writes (quantized models).
#[derive(Clone, Debug, Deserialize)]
pub struct Fp32Reference {
    pub file: String,
    pub written_by: String,
    pub sha256: String,
}

/// A model our quantizer wrote (never committed: the suite re-quantizes `source` and checks `sha256`).
#[derive(Clone, Debug, Deserialize)]
pub struct QuantizedModel {
    pub id: String,
    /// Source model file name in the models directory.
    pub source: String,
    /// `int8` or `int16`.
    pub target: String,
    pub command: String,
    /// Calibration image file names in the images directory, in the order they were given.
    pub calibration: Vec<String>,
    pub sha256: String,
    pub input: TensorSpec,
    pub output: TensorSpec,
    /// TFLite's reference kernels on the written file.
    pub cases: Vec<QuantizedCase>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct QuantizedCase {
    pub image: String,
    pub input: String,
    pub output: String,
    pub top5: Vec<(u32, f32)>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct GoldenModel {
    pub id: String,
    /// File name in the models directory: the bytes we load.
    pub file: String,
    pub sha256: String,
    /// The file the reference interpreter ran, when it differs from `file` (person_detect: a
    /// copy with a field fixed so full TFLite accepts it).
    pub reference_file: Option<String>,
    pub reference_sha256: Option<String>,
    /// Labels file name in the models directory, one label per output index.
    pub labels: Option<String>,
    pub input: TensorSpec,
    pub output: TensorSpec,
    /// How the reference fed pixels: `raw` (uint8 inputs: the pixels themselves) or `normalize`
    /// (`(pixel - mean) / std`, then quantized with the input's parameters).
    pub pixels: String,
    pub mean: Option<f32>,
    pub std: Option<f32>,
    /// `rgb` or `gray`.
    pub color: Option<String>,
    pub cases: Vec<Case>,
    #[serde(default)]
    pub fp32_reference: Option<Fp32Reference>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct TensorSpec {
    pub shape: Vec<u32>,
    pub dtype: Dtype,
    pub scale: Option<f32>,
    pub zero_point: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    Uint8,
    Int8,
    Int16,
    Float32,
}

impl Dtype {
    pub fn element_type(self) -> ElementType {
        match self {
            Dtype::Uint8 => ElementType::Uint8,
            Dtype::Int8 => ElementType::Int8,
            Dtype::Int16 => ElementType::Int16,
            Dtype::Float32 => ElementType::Float32,
        }
    }

    /// The arithmetic a model with this input type runs in by default (see `load-options`).
    pub fn default_precision(self) -> Precision {
        match self {
            Dtype::Float32 => Precision::Fp32,
            Dtype::Uint8 | Dtype::Int8 => Precision::Int8,
            Dtype::Int16 => Precision::Int16,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// Photo file name in the images directory.
    pub image: String,
    pub kind: CaseKind,
    /// `.npy` paths relative to `golden/`.
    pub input: String,
    pub output: String,
    /// The reference's top 5 (or fewer) as (index, score), sorted by score then index.
    pub top5: Vec<(u32, f32)>,
    /// fp32 reference probabilities and logits (input of the final SOFTMAX), see [`Fp32Reference`].
    #[serde(default)]
    pub fp32_output: Option<String>,
    #[serde(default)]
    pub fp32_logits: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaseKind {
    /// A natural photo, preprocessed like `classify` does (decode, resize, normalize).
    Photo,
    /// An image whose pixel bytes are fed bit-cast to int8 (the VWW test images): only the
    /// tensor path applies, `classify` would see something else.
    RawInt8,
}

impl GoldenModel {
    /// The golden input tensor, converted to the executing input's element type when a model runs at
    /// another precision than its own (through real values: `scale * (q - zero_point)`).
    pub fn input_for(&self, info: &ModelInfo, golden: Tensor) -> Result<Tensor> {
        if golden.data.element_type() == info.input.element {
            return Ok(golden);
        }
        let real: Vec<f32> = match &golden.data {
            TensorData::Float32(v) => v.clone(),
            data => {
                let scale = self.input.scale.context("quantized golden input without a scale")?;
                let zp = self.input.zero_point.unwrap_or(0);
                data.to_i32().context("integer data")?.into_iter().map(|q| scale * (q - zp) as f32).collect()
            }
        };
        let quantize = |lo: i32, hi: i32| -> Result<Vec<i32>> {
            let q = info.input.quantization.context("quantized executing input without quantization")?;
            Ok(real
                .iter()
                .map(|&r| ((r / q.scale).round() as i32).saturating_add(q.zero_point).clamp(lo, hi))
                .collect())
        };
        let data = match info.input.element {
            ElementType::Float32 => TensorData::Float32(real.clone()),
            ElementType::Uint8 => TensorData::Uint8(quantize(0, 255)?.into_iter().map(|q| q as u8).collect()),
            ElementType::Int8 => TensorData::Int8(quantize(-128, 127)?.into_iter().map(|q| q as i8).collect()),
            ElementType::Int16 => TensorData::Int16(quantize(-32768, 32767)?.into_iter().map(|q| q as i16).collect()),
        };
        Ok(Tensor { shape: golden.shape, data })
    }

    pub fn is_integer(&self) -> bool {
        self.input.dtype != Dtype::Float32
    }

    pub fn model_path(&self) -> PathBuf {
        paths::models_dir().join(&self.file)
    }

    /// The model bytes, after checking their sha256 against the manifest.
    pub fn model_bytes(&self) -> Result<Vec<u8>> {
        let path = self.model_path();
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "reading model {} (set EDGE_CLASSIFY_MODELS or EDGE_CLASSIFY_SHARED if the shared \
                 folder is not beside the checkout)",
                path.display()
            )
        })?;
        let actual = sha256_hex(&bytes);
        ensure!(
            actual.eq_ignore_ascii_case(&self.sha256),
            "{} has sha256 {actual}, golden/manifest.json expects {}",
            path.display(),
            self.sha256
        );
        Ok(bytes)
    }

    /// The labels file's lines (one per output index), if the manifest names one.
    pub fn labels_text(&self) -> Result<Option<String>> {
        let Some(file) = &self.labels else {
            return Ok(None);
        };
        let path = paths::models_dir().join(file);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading labels {}", path.display()))?;
        Ok(Some(text))
    }

    pub fn labels(&self) -> Result<Vec<String>> {
        Ok(self.labels_text()?.map(|t| t.lines().map(|l| l.trim_end().to_owned()).collect()).unwrap_or_default())
    }

    /// Load options with or without labels, and no normalization: the golden inputs follow the
    /// documented default convention (raw pixels for uint8 inputs, else 127.5 / 127.5), so the
    /// suite checks that default rather than options that restate it.
    pub fn load_options(&self, with_labels: bool) -> Result<LoadOptions> {
        Ok(LoadOptions {
            precision: None,
            labels: if with_labels { self.labels_text()? } else { None },
            mean: None,
            std: None,
        })
    }

    pub fn photo_cases(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| c.kind == CaseKind::Photo)
    }
}

impl Case {
    pub fn input(&self, golden: &Golden) -> Result<Npy> {
        Npy::read_file(&golden.root.join(&self.input))
    }

    pub fn output(&self, golden: &Golden) -> Result<Npy> {
        Npy::read_file(&golden.root.join(&self.output))
    }

    pub fn image_path(&self) -> PathBuf {
        paths::images_dir().join(&self.image)
    }

    pub fn image_bytes(&self) -> Result<Vec<u8>> {
        let path = self.image_path();
        std::fs::read(&path).with_context(|| format!("reading image {}", path.display()))
    }

    /// File name without extension, e.g. `grace_hopper`.
    pub fn stem(&self) -> &str {
        Path::new(&self.image).file_stem().and_then(|s| s.to_str()).unwrap_or(&self.image)
    }
}

/// The manifest plus the directory it was read from.
#[derive(Clone, Debug)]
pub struct Golden {
    pub root: PathBuf,
    pub manifest: Manifest,
}

impl Golden {
    /// Read `golden/manifest.json` of this workspace.
    pub fn load() -> Result<Golden> {
        Golden::load_from(&paths::golden_dir())
    }

    pub fn load_from(root: &Path) -> Result<Golden> {
        let path = root.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading the golden manifest {}", path.display()))?;
        let manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("parsing the golden manifest {}", path.display()))?;
        ensure!(!manifest.models.is_empty(), "{} lists no models", path.display());
        Ok(Golden { root: root.to_owned(), manifest })
    }

    pub fn models(&self) -> &[GoldenModel] {
        &self.manifest.models
    }

    pub fn model(&self, id: &str) -> Result<&GoldenModel> {
        self.manifest
            .models
            .iter()
            .find(|m| m.id == id)
            .with_context(|| format!("model {id:?} is not in the golden manifest"))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
