//! A new layer on top of an image (`docker commit`): the tar stream a caller writes becomes
//! a blob in the content store and, in the same pass, the snapshot of the new chain
//! (unpacked by another thread while the stream is written, so that reading the container's
//! files and writing the snapshot's overlap); then the image is recorded with the parent's
//! layers plus this one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;

use crate::config::DockerOCIImage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{ImageStore, NewLayer};
use crate::{ImageRecord, LayerRecord};

/// Chunks handed from the writer to the unpacking thread.
const CHUNK: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

/// Add an image made of `parent` (its layers, bottom first) and one layer whose tar stream
/// `write` produces; `config_for` builds the image config from the new layer's DiffID.
pub fn commit_layer(
    store: &ImageStore,
    parent: &[LayerRecord],
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
    config_for: impl FnOnce(&Digest) -> DockerOCIImage,
    tags: &[Reference],
) -> Result<ImageRecord> {
    let staging = store.staging_dir()?;
    let fs_dir = staging.path().join("fs");
    std::fs::create_dir(&fs_dir).map_err(|e| Error::io("create", &fs_dir, e))?;
    let mut ingest = store.content().ingest()?;
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(CHUNKS_IN_FLIGHT);
    let (written, unpacked) = std::thread::scope(|s| {
        let unpacker = s.spawn(|| {
            let reader = ChannelReader {
                rx,
                current: Vec::new(),
                pos: 0,
            };
            crate::unpack::unpack(reader, &fs_dir)
        });
        let mut tee = Tee {
            blob: &mut ingest,
            tx: Some(tx),
            buf: Vec::with_capacity(CHUNK),
        };
        let written = write(&mut tee).and_then(|()| tee.finish());
        drop(tee);
        let unpacked = unpacker
            .join()
            .unwrap_or_else(|_| Err(Error::archive("the layer's unpacker panicked")));
        (written, unpacked)
    });
    // The unpacker's error is the cause when both failed (the writer then saw a closed pipe).
    let unpacked = unpacked?;
    written?;
    let blob = ingest.commit(Some(&unpacked.diff_id), "committed layer")?;
    let mut diff_ids: Vec<Digest> = parent.iter().map(|l| l.diff_id.clone()).collect();
    diff_ids.push(unpacked.diff_id.clone());
    let chains = ImageStore::chain_ids(&diff_ids);
    let Some(chain) = chains.last().cloned() else {
        return Err(Error::archive("no layer to commit"));
    };
    store.install_snapshot(staging, &chain)?;
    let mut layers: Vec<NewLayer> = parent
        .iter()
        .map(|l| NewLayer {
            blob: l.blob.clone(),
            media_type: l.media_type.clone(),
            diff_id: l.diff_id.clone(),
        })
        .collect();
    layers.push(NewLayer {
        blob,
        media_type: crate::manifest::layer_media_type(crate::unpack::Compression::None).to_string(),
        diff_id: unpacked.diff_id.clone(),
    });
    let sizes = HashMap::from([(chain, unpacked.size)]);
    let config = config_for(&unpacked.diff_id).to_vec()?;
    store.commit(&config, &layers, &sizes, tags, None)
}

/// Writes to the blob and sends the same bytes to the unpacker.
struct Tee<'a, W: Write> {
    blob: &'a mut W,
    tx: Option<mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
}

impl<W: Write> Tee<'_, W> {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.blob.write_all(&chunk)?;
        match &self.tx {
            Some(tx) => tx.send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the unpacker stopped")
            }),
            None => Ok(()),
        }
    }

    /// Send what is buffered and tell the unpacker the stream has ended.
    fn finish(&mut self) -> Result<()> {
        self.send()
            .map_err(|e| Error::io("write", "committed layer", e))?;
        self.tx = None;
        Ok(())
    }
}

impl<W: Write> Write for Tee<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
