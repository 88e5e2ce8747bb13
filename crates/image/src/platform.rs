//! Platforms (`os/arch[/variant]`): what a pull asks an index for, and what a run checks an
//! image's config against. Spellings are normalized as containerd does (`x86_64` is
//! `amd64`, `aarch64` is `arm64`, `arm64/v8` is plain `arm64`), so both sides compare alike.

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<Platform> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] | [os, arch, _] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
                os: os.to_lowercase(),
                architecture: arch.to_lowercase(),
                variant: parts.get(2).map(|v| v.to_lowercase()),
            }),
            _ => Err(Error::InvalidPlatform(s.to_string())),
        }
    }

    /// The platform of this machine (what an image must be built for to run here).
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    /// Whether an image or index entry built for `other` serves this platform (asking for
    /// no variant accepts any).
    pub fn served_by(&self, other: &Platform) -> bool {
        let (wanted, offered) = (self.normalized(), other.normalized());
        wanted.os == offered.os
            && wanted.architecture == offered.architecture
            && (wanted.variant.is_none() || wanted.variant == offered.variant)
    }

    fn normalized(&self) -> Platform {
        let architecture = match self.architecture.as_str() {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            "i386" => "386",
            other => other,
        };
        let variant = self
            .variant
            .as_deref()
            .map(|v| match v.strip_prefix('v') {
                Some(_) => v.to_string(),
                None => format!("v{v}"),
            })
            .filter(|v| {
                !matches!(
                    (architecture, v.as_str()),
                    ("arm64", "v8" | "v8.0") | ("amd64", "v1")
                )
            });
        Platform {
            os: self.os.clone(),
            architecture: architecture.to_string(),
            variant,
        }
    }
}

impl From<&crate::oci::Platform> for Platform {
    /// An index entry's platform.
    fn from(p: &crate::oci::Platform) -> Platform {
        Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            variant: p.variant().clone().filter(|v| !v.is_empty()),
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spellings_compare_alike() {
        let p = |s: &str| Platform::parse(s).expect("platform");
        assert!(p("linux/amd64").served_by(&p("linux/x86_64")));
        assert!(p("linux/aarch64").served_by(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").served_by(&p("linux/arm64")));
        assert!(p("linux/arm/v7").served_by(&p("linux/arm/7")));
        assert!(p("linux/arm").served_by(&p("linux/arm/v6")));
        assert!(!p("linux/arm/v7").served_by(&p("linux/arm/v6")));
        assert!(!p("linux/arm64").served_by(&p("linux/amd64")));
        assert!(!p("windows/amd64").served_by(&p("linux/amd64")));
        for bad in ["linux", "", "/amd64", "linux/", "a/b/c/d"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_image_config_names_its_platform() {
        let config = json!({"os": "linux", "architecture": "arm", "variant": "v7"});
        let of = |v: serde_json::Value| {
            serde_json::from_value::<crate::DockerOCIImage>(v)
                .expect("config")
                .platform()
                .to_string()
        };
        assert_eq!(of(config), "linux/arm/v7");
        assert_eq!(
            of(json!({"architecture": "amd64", "os": "linux"})),
            "linux/amd64"
        );
        assert_eq!(
            of(json!({"architecture": "386", "os": "linux", "variant": ""})),
            "linux/386"
        );
    }
}
