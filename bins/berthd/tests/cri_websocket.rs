//! The CRI's streaming URLs over WebSocket, end to end: a berthd with a pod on a private CNI
//! bridge, URLs from the Exec, Attach and PortForward RPCs (called over the CRI socket with
//! tonic), followed with a WebSocket client as the kubelet's newer clients do (crictl 1.29
//! has no WebSocket transport): exec's stdout, stderr and exit code in v4, stdin ended by
//! v5's close signal, a terminal's resize, attach, and port forwarding to a server in the pod.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{busybox_image, Daemon};
use futures_util::{SinkExt, StreamExt};
use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tokio::net::{TcpStream, UnixStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tonic::transport::{Channel, Endpoint};

type TestResult = Result<(), Box<dyn std::error::Error>>;
type Ws = WebSocketStream<TcpStream>;

/// A berthd with its CRI socket and a CNI bridge network of its own (its own bridge name
/// and subnet, apart from tests/cri.rs's 10.212.x).
struct CriDaemon {
    d: Daemon,
    cni: tempfile::TempDir,
    bridge: String,
}

impl CriDaemon {
    fn start() -> CriDaemon {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pid = std::process::id();
        let bridge = format!("cw{n}x{}", pid % 100_000);
        let subnet = format!("10.213.{}.0/24", (pid % 50) * 5 + n);
        let cni = tempfile::tempdir().expect("cni dir");
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "criws",
            "plugins": [
                {"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]],
                          "dataDir": cni.path().join("ipam")}},
            ],
        });
        std::fs::write(cni.path().join("10-criws.conflist"), conf.to_string()).expect("conflist");
        let conf_dir = cni.path().to_string_lossy().into_owned();
        let d = Daemon::start_for_containers_with(&[
            "--cni-conf-dir",
            &conf_dir,
            "--cni-bin-dir",
            "/usr/lib/cni",
        ]);
        busybox_image(&d);
        CriDaemon { d, cni, bridge }
    }

    fn socket(&self) -> PathBuf {
        self.d.exec_root().join("cri.sock")
    }

    fn logs(&self) -> PathBuf {
        self.cni.path().join("logs")
    }
}

impl Drop for CriDaemon {
    fn drop(&mut self) {
        // Pods first, failed assertion or not: their containers are not the Docker API's to
        // remove when the daemon goes. Then the bridge the CNI plugin made.
        if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            runtime.block_on(remove_all_pods(&self.socket()));
        }
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}

async fn remove_all_pods(socket: &Path) {
    let Ok(mut rt) = client(socket).await else {
        return;
    };
    let pods = match rt
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
    {
        Ok(r) => r.into_inner().items,
        Err(_) => return,
    };
    for pod in pods {
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.id.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod.id,
            })
            .await;
    }
}

/// A gRPC client on the CRI's unix socket.
async fn client(socket: &Path) -> Result<RuntimeServiceClient<Channel>, tonic::transport::Error> {
    let socket = socket.to_path_buf();
    let channel = Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await?;
    Ok(RuntimeServiceClient::new(channel))
}

fn pod_config(logs: &Path) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "wsp".into(),
            uid: "uid-wsp".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "wsp-host".into(),
        log_directory: logs.join("wsp").to_string_lossy().into_owned(),
        linux: Some(cri::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

/// A started container in the pod running `sh -c command`.
async fn run_container(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    config: &cri::PodSandboxConfig,
    name: &str,
    command: &str,
) -> Result<String, tonic::Status> {
    let container = cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: "bb:1".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), command.into()],
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig::default()),
        ..Default::default()
    };
    let id = rt
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(container),
            sandbox_config: Some(config.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok(id)
}

async fn connect(url: &str, protocols: &str) -> Result<Ws, Box<dyn std::error::Error>> {
    let url = url.replacen("http://", "ws://", 1);
    let mut request = url.as_str().into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocols)?);
    let host = request
        .uri()
        .authority()
        .map(|a| a.to_string())
        .ok_or("no host in the URL")?;
    let tcp = TcpStream::connect(host).await?;
    let (ws, resp) = tokio_tungstenite::client_async(request, tcp).await?;
    let chosen = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert_eq!(Some(chosen), protocols.split(',').next().map(str::trim));
    Ok(ws)
}

/// The data per channel until the server closes the connection.
async fn read_to_close(ws: &mut Ws) -> Result<BTreeMap<u8, Vec<u8>>, Box<dyn std::error::Error>> {
    let mut channels: BTreeMap<u8, Vec<u8>> = BTreeMap::new();
    while let Some(message) = tokio::time::timeout(Duration::from_secs(60), ws.next())
        .await
        .map_err(|_| "no message from the server for a minute")?
    {
        match message? {
            Message::Binary(b) => {
                let (channel, data) = b.split_first().ok_or("empty message")?;
                channels
                    .entry(*channel)
                    .or_default()
                    .extend_from_slice(data);
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    Ok(channels)
}

fn text(channels: &BTreeMap<u8, Vec<u8>>, channel: u8) -> String {
    String::from_utf8_lossy(channels.get(&channel).map(Vec::as_slice).unwrap_or(b"")).into_owned()
}

async fn exec_url(
    rt: &mut RuntimeServiceClient<Channel>,
    container: &str,
    cmd: &[&str],
    stdin: bool,
) -> Result<String, tonic::Status> {
    Ok(rt
        .exec(cri::ExecRequest {
            container_id: container.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            tty: false,
            stdin,
            stdout: true,
            stderr: true,
        })
        .await?
        .into_inner()
        .url)
}

async fn exec_and_port_forward(c: &CriDaemon) -> TestResult {
    let mut rt = client(&c.socket()).await?;
    let config = pod_config(&c.logs());
    let pod = rt
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    drive(&mut rt, &pod, &config).await?;
    rt.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await?;
    rt.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await?;
    Ok(())
}

async fn drive(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    config: &cri::PodSandboxConfig,
) -> TestResult {
    let web = run_container(
        rt,
        pod,
        config,
        "web",
        "mkdir -p /www; echo page > /www/index.html; httpd -f -p 8080 -h /www",
    )
    .await?;

    // v4: stdout and stderr on their channels, then the exit code as a metav1.Status.
    let url = exec_url(
        rt,
        &web,
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
    )
    .await?;
    let mut ws = connect(&url, "v4.channel.k8s.io").await?;
    let channels = read_to_close(&mut ws).await?;
    assert_eq!(text(&channels, 1), "out\n");
    assert_eq!(text(&channels, 2), "err\n");
    let status: serde_json::Value =
        serde_json::from_slice(channels.get(&3).map(Vec::as_slice).unwrap_or(b"null"))?;
    assert_eq!(status["status"], "Failure", "{status}");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");

    // v5: stdin to its end with the close signal on channel 255.
    let url = exec_url(rt, &web, &["sh", "-c", "cat; echo end"], true).await?;
    let mut ws = connect(&url, "v5.channel.k8s.io, v4.channel.k8s.io").await?;
    ws.send(Message::binary(b"\x00typed input\n".to_vec()))
        .await?;
    ws.send(Message::binary(vec![255u8, 0])).await?;
    let channels = read_to_close(&mut ws).await?;
    assert_eq!(text(&channels, 1), "typed input\nend\n");
    assert_eq!(text(&channels, 3), r#"{"metadata":{},"status":"Success"}"#);

    // A terminal: sizes on channel 4 reach the pty (`stty size` prints rows and columns).
    let url = rt
        .exec(cri::ExecRequest {
            container_id: web.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "while read x; do stty size; done".into(),
            ],
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .await?
        .into_inner()
        .url;
    let mut ws = connect(&url, "v4.channel.k8s.io").await?;
    ws.send(Message::binary(
        b"\x04{\"Width\":100,\"Height\":42}".to_vec(),
    ))
    .await?;
    let mut shown = String::new();
    // The size and the newline travel apart: ask again until the new size shows.
    for _ in 0..50 {
        ws.send(Message::binary(b"\x00\n".to_vec())).await?;
        if let Ok(Some(message)) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await
        {
            if let Message::Binary(b) = message? {
                if let Some((1, d)) = b.split_first() {
                    shown.push_str(&String::from_utf8_lossy(d));
                }
            }
        }
        if shown.contains("42 100") {
            break;
        }
    }
    let _ = ws.close(None).await;
    assert!(shown.contains("42 100"), "{shown:?}");

    // Attach: the main process's output as it comes.
    let tick = run_container(
        rt,
        pod,
        config,
        "tick",
        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done",
    )
    .await?;
    let url = rt
        .attach(cri::AttachRequest {
            container_id: tick,
            stdin: false,
            tty: false,
            stdout: true,
            stderr: true,
        })
        .await?
        .into_inner()
        .url;
    let mut ws = connect(&url, "v4.channel.k8s.io").await?;
    let mut attached = String::new();
    while !attached.contains("tick") {
        let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await
        else {
            break;
        };
        if let Message::Binary(b) = message? {
            if let Some((1, d)) = b.split_first() {
                attached.push_str(&String::from_utf8_lossy(d));
            }
        }
    }
    let _ = ws.close(None).await;
    assert!(attached.contains("tick"), "{attached:?}");

    // Port forwarding to the pod's httpd (retried until it listens).
    let mut page = String::new();
    for _ in 0..50 {
        page = fetch_through_port_forward(rt, pod).await?;
        if page.contains("page") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(page.contains("200 OK") && page.contains("page"), "{page}");
    Ok(())
}

/// GET /index.html from port 8080 in the pod, over a WebSocket port forward: what came back
/// on the data channel, or the error channel's text.
async fn fetch_through_port_forward(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let url = rt
        .port_forward(cri::PortForwardRequest {
            pod_sandbox_id: pod.into(),
            port: vec![8080],
        })
        .await?
        .into_inner()
        .url;
    let mut ws = connect(&format!("{url}?port=8080"), "v4.channel.k8s.io").await?;
    // Each channel starts with the port, little endian.
    let mut announced = BTreeMap::new();
    while announced.len() < 2 {
        let Some(Message::Binary(b)) = ws.next().await.transpose()? else {
            return Err("the connection ended before the port was announced".into());
        };
        let (channel, data) = b.split_first().ok_or("empty message")?;
        announced.insert(*channel, data.to_vec());
    }
    assert_eq!(announced[&0], 8080u16.to_le_bytes());
    assert_eq!(announced[&1], 8080u16.to_le_bytes());
    ws.send(Message::binary(
        b"\x00GET /index.html HTTP/1.0\r\n\r\n".to_vec(),
    ))
    .await?;
    let mut data = Vec::new();
    let mut error = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        let Message::Binary(b) = message? else {
            break;
        };
        match b.split_first() {
            Some((0, d)) => data.extend_from_slice(d),
            Some((1, d)) => error.extend_from_slice(d),
            _ => {}
        }
        // httpd closes after its answer: a complete page ends the exchange.
        if String::from_utf8_lossy(&data).contains("page\n") || !error.is_empty() {
            break;
        }
    }
    let _ = ws.close(None).await;
    if !error.is_empty() {
        return Ok(String::from_utf8_lossy(&error).into_owned());
    }
    Ok(String::from_utf8_lossy(&data).into_owned())
}

#[test]
fn exec_and_port_forward_over_websocket_through_the_cri() {
    let c = CriDaemon::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = runtime.block_on(exec_and_port_forward(&c)) {
        panic!("{e}");
    }
}
