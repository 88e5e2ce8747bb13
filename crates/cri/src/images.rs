//! The ImageService: the engine's image store as a kubelet sees it. Pulls go through berth's
//! registry client (with its per-registry mirrors); images are shared with the Docker API,
//! and one that a container of either API uses is not removed.

use std::sync::Arc;

use base64::Engine as _;
use berth_image::{DockerOCIImage, Image as StoredImage, Platform, Reference};
use berth_registry::{Credentials, Transfer};
use k8s_cri::v1::image_service_server::ImageService;
use k8s_cri::v1::{
    AuthConfig, FilesystemIdentifier, FilesystemUsage, Image, ImageFsInfoRequest,
    ImageFsInfoResponse, ImageSpec, ImageStatusRequest, ImageStatusResponse, Int64Value,
    ListImagesRequest, ListImagesResponse, PullImageRequest, PullImageResponse, RemoveImageRequest,
    RemoveImageResponse, UInt64Value,
};
use tonic::{Request, Response, Status};

use crate::error::{CriError, Result};
use crate::Cri;

/// ImageStatus's verbose `info` (the image's config as containerd shows it).
#[derive(serde::Serialize)]
struct VerboseInfo<'a> {
    #[serde(rename = "imageConfig")]
    image_config: &'a DockerOCIImage,
    #[serde(rename = "chainIDs")]
    chain_ids: usize,
}

/// The image's USER as the CRI reports it: a numeric uid, or a name.
fn user_of(config: &DockerOCIImage) -> (Option<Int64Value>, String) {
    let user = config
        .config
        .as_ref()
        .and_then(|c| c.oci.user().as_deref())
        .unwrap_or_default();
    let name = user.split(':').next().unwrap_or_default();
    match name.parse::<i64>() {
        Ok(uid) => (Some(Int64Value { value: uid }), String::new()),
        Err(_) => (None, name.to_string()),
    }
}

fn image_of(cri: &Cri, image: &StoredImage) -> Result<Image> {
    let config = cri.engine.images.config(&image.record)?;
    let (uid, username) = user_of(&config);
    Ok(Image {
        id: image.record.id.to_string(),
        repo_tags: image.tags.clone(),
        repo_digests: image.record.repo_digests.clone(),
        size: image.record.size,
        uid,
        username,
        spec: Some(ImageSpec {
            image: image.record.id.to_string(),
            ..Default::default()
        }),
        pinned: false,
    })
}

/// The image a CRI spec names, if the store has it.
pub(crate) fn find(cri: &Cri, spec: Option<&ImageSpec>) -> Result<Option<StoredImage>> {
    let name = spec.map(|s| s.image.as_str()).unwrap_or_default();
    if name.is_empty() {
        return Err(CriError::InvalidArgument("no image given".into()));
    }
    match cri.engine.images.resolve(name) {
        Ok(image) => Ok(Some(image)),
        Err(berth_image::Error::ImageNotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The credentials of a pull: user and password, or `auth` (base64 of `user:password`).
/// Tokens are refused by name: berth's registry client authenticates with a user and
/// password (and the Bearer flow it runs itself).
fn credentials(auth: Option<&AuthConfig>) -> Result<Credentials> {
    let Some(auth) = auth else {
        return Ok(Credentials::default());
    };
    if !auth.identity_token.is_empty() || !auth.registry_token.is_empty() {
        return Err(CriError::InvalidArgument(
            "PullImage: identity_token and registry_token are not supported by berth; give username and password (or auth)".into(),
        ));
    }
    if !auth.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.auth.trim())
            .map_err(|e| {
                CriError::InvalidArgument(format!("PullImage: auth is not base64: {e}"))
            })?;
        let text = String::from_utf8_lossy(&decoded);
        let (username, password) = text.split_once(':').ok_or_else(|| {
            CriError::InvalidArgument("PullImage: auth is not user:password".into())
        })?;
        return Ok(Credentials {
            username: username.to_string(),
            password: password.to_string(),
        });
    }
    Ok(Credentials {
        username: auth.username.clone(),
        password: auth.password.clone(),
    })
}

impl Cri {
    async fn pull(&self, req: PullImageRequest) -> Result<String> {
        let name = req
            .image
            .as_ref()
            .map(|s| s.image.clone())
            .unwrap_or_default();
        let reference = Reference::parse(&name)
            .map_err(|e| CriError::InvalidArgument(e.to_string()))?
            .with_default_tag();
        let transfer = Transfer {
            client: self.registry.clone(),
            store: self.engine.images.clone(),
            credentials: credentials(req.auth.as_ref())?,
            progress: Arc::new(|_| {}),
        };
        let pulled = transfer.pull(&reference, &Platform::host()).await?;
        let shown = reference.familiar_string();
        self.engine.image_event("pull", &shown, &shown);
        Ok(pulled.id.to_string())
    }

    /// RemoveImage: the image and all its names; an image some container uses stays.
    fn remove_image(&self, spec: Option<&ImageSpec>) -> Result<()> {
        let Some(image) = find(self, spec)? else {
            return Ok(());
        };
        let id = image.record.id.to_string();
        if let Some(user) = self
            .engine
            .containers()
            .list()
            .into_iter()
            .find(|c| c.image == id)
        {
            return Err(CriError::FailedPrecondition(format!(
                "image {id} is in use by container {}",
                user.id
            )));
        }
        self.engine.images.remove(&id, true)?;
        Ok(())
    }

    fn fs_usage(&self) -> Result<FilesystemUsage> {
        let mountpoint = self.engine.data_root.join("image");
        let used = self.engine.images.disk_usage()?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Ok(FilesystemUsage {
            timestamp,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: mountpoint.display().to_string(),
            }),
            used_bytes: Some(UInt64Value { value: used }),
            inodes_used: Some(UInt64Value {
                value: inodes_under(&mountpoint),
            }),
        })
    }
}

/// Inodes used under `dir` (kubelet's image GC reads it; a walk, as containerd's snapshot
/// usage is).
fn inodes_under(dir: &std::path::Path) -> u64 {
    let mut count = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            count += 1;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(entry.path());
            }
        }
    }
    count
}

/// Run a blocking store call off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    cri: &Arc<Cri>,
    work: impl FnOnce(&Cri) -> Result<T> + Send + 'static,
) -> Result<T, Status> {
    let cri = cri.clone();
    tokio::task::spawn_blocking(move || work(&cri))
        .await
        .map_err(|e| Status::internal(format!("a CRI worker failed: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl ImageService for crate::Service {
    async fn list_images(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let filter = request.into_inner().filter.and_then(|f| f.image);
        let images = blocking(&self.0, move |cri| {
            let wanted = match filter.as_ref().filter(|s| !s.image.is_empty()) {
                Some(spec) => match find(cri, Some(spec))? {
                    Some(image) => Some(image.record.id.to_string()),
                    None => return Ok(Vec::new()),
                },
                None => None,
            };
            cri.engine
                .images
                .list()?
                .iter()
                .filter(|i| wanted.as_ref().is_none_or(|w| i.record.id.as_str() == w))
                .map(|i| image_of(cri, i))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        request: Request<ImageStatusRequest>,
    ) -> Result<Response<ImageStatusResponse>, Status> {
        let req = request.into_inner();
        let response = blocking(&self.0, move |cri| {
            let Some(image) = find(cri, req.image.as_ref())? else {
                return Ok(ImageStatusResponse::default());
            };
            let mut info = std::collections::HashMap::new();
            if req.verbose {
                let config = cri.engine.images.config(&image.record)?;
                let verbose = VerboseInfo {
                    image_config: &config,
                    chain_ids: image.record.layers.len(),
                };
                let text = serde_json::to_string(&verbose)
                    .map_err(|e| berth_image::Error::Meta(format!("image info: {e}")))?;
                info.insert("info".to_string(), text);
            }
            Ok(ImageStatusResponse {
                image: Some(image_of(cri, &image)?),
                info,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn pull_image(
        &self,
        request: Request<PullImageRequest>,
    ) -> Result<Response<PullImageResponse>, Status> {
        let image_ref = self.0.pull(request.into_inner()).await?;
        Ok(Response::new(PullImageResponse { image_ref }))
    }

    async fn remove_image(
        &self,
        request: Request<RemoveImageRequest>,
    ) -> Result<Response<RemoveImageResponse>, Status> {
        let spec = request.into_inner().image;
        blocking(&self.0, move |cri| cri.remove_image(spec.as_ref())).await?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(
        &self,
        _request: Request<ImageFsInfoRequest>,
    ) -> Result<Response<ImageFsInfoResponse>, Status> {
        let usage = blocking(&self.0, |cri| cri.fs_usage()).await?;
        Ok(Response::new(ImageFsInfoResponse {
            image_filesystems: vec![usage],
            container_filesystems: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_users_are_uids_or_names() {
        let config =
            |v: serde_json::Value| -> DockerOCIImage { serde_json::from_value(v).expect("config") };
        let (uid, name) = user_of(&config(
            serde_json::json!({"config": {"User": "1000:1000"}}),
        ));
        assert_eq!((uid.map(|u| u.value), name.as_str()), (Some(1000), ""));
        let (uid, name) = user_of(&config(serde_json::json!({"config": {"User": "www-data"}})));
        assert_eq!((uid, name.as_str()), (None, "www-data"));
        let (uid, name) = user_of(&config(serde_json::json!({})));
        assert_eq!((uid, name.as_str()), (None, ""));
    }

    #[test]
    fn pull_credentials_from_auth_or_fields_and_tokens_refused() {
        let c = credentials(Some(&AuthConfig {
            auth: base64::engine::general_purpose::STANDARD.encode("u:p"),
            ..Default::default()
        }))
        .expect("auth");
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let c = credentials(Some(&AuthConfig {
            username: "a".into(),
            password: "b".into(),
            ..Default::default()
        }))
        .expect("fields");
        assert_eq!(c.username, "a");
        let err = credentials(Some(&AuthConfig {
            registry_token: "t".into(),
            ..Default::default()
        }))
        .expect_err("token");
        assert!(err.to_string().contains("registry_token"));
    }
}
