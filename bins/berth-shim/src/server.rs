//! The shim's poll loop: the container's output to the log and to attached clients, their
//! input to the container, requests on shim.sock, and the exits of the container's init
//! and of exec'd processes (SIGCHLD on a signalfd).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_shim_protocol::{frame, LogPosition, Request, EXIT, STDERR, STDOUT};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use serde_json::Value;

use crate::exec::Exec;
use crate::log;
use crate::runtime::Runtime;
use crate::stdio::{Plumbing, Sink};
use crate::Args;

/// How long the shim waits, once the container has ended, for its output to drain.
const DRAIN: Duration = Duration::from_secs(2);
/// A handshake line longer than this is not a request.
const MAX_REQUEST: usize = 1024 * 1024;
/// Output queued for a client past which the outputs that feed it are not read: a client
/// that reads slowly slows the process down (as Docker's attach does) instead of losing
/// output or stalling the shim.
const CLIENT_QUEUE: usize = 256 * 1024;

enum Role {
    /// The request line has not arrived yet.
    Handshake(Vec<u8>),
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Exec(String),
    Wait,
}

struct Client {
    /// Nonblocking: what it does not take at once waits in `queue`.
    stream: UnixStream,
    role: Role,
    /// The client shut its sending side: it is only written to.
    read_closed: bool,
    /// What is to be written to it, in order.
    queue: Vec<u8>,
    /// Its stream is over: it goes once `queue` is written.
    closing: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        Client {
            stream,
            role: Role::Handshake(Vec::new()),
            read_closed: false,
            queue: Vec::new(),
            closing: false,
        }
    }

    fn backed_up(&self) -> bool {
        self.queue.len() >= CLIENT_QUEUE
    }

    /// Write what is queued, as far as the client takes it now; an error means it is gone.
    fn flush(&mut self) -> std::io::Result<()> {
        while !self.queue.is_empty() {
            match self.stream.write(&self.queue) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether it wants to read from the client now / write to it.
    fn interest(&self, input_ready: bool) -> PollFlags {
        let mut flags = PollFlags::empty();
        if !self.read_closed && !self.closing && input_ready {
            flags |= PollFlags::POLLIN;
        }
        if !self.queue.is_empty() {
            flags |= PollFlags::POLLOUT;
        }
        flags
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Signals,
    Listener,
    /// berthd's end of the ready pipe closed before it started the container.
    Daemon,
    Output(usize),
    Input,
    Client(u64),
    ExecOutput(String, usize),
    ExecInput(String),
}

pub struct Shim<'a> {
    args: &'a Args,
    runtime: Runtime,
    listener: UnixListener,
    signals: SignalFd,
    log: log::Writer,
    /// Partial lines of stdout and stderr.
    lines: [log::Lines; 2],
    init: i32,
    /// The container has no pid namespace of its own (the host's, or another container's).
    shared_pid: bool,
    started: bool,
    /// The ready pipe, held from "created" until the start: if berthd dies in between,
    /// nobody will start the container or know of this shim, so it ends (see `abandon`).
    daemon: Option<std::fs::File>,
    start_error: Option<String>,
    /// The container's exit record once its init is reaped, and since when.
    ending: Option<(Value, Instant)>,
    stdio: Plumbing,
    clients: HashMap<u64, Client>,
    next_client: u64,
    execs: HashMap<String, Exec>,
}

fn stream_name(stream: u8) -> &'static str {
    if stream == STDERR {
        "stderr"
    } else {
        "stdout"
    }
}

fn exit_code(status: WaitStatus) -> Option<(i32, i32)> {
    match status {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as i32)),
        _ => None,
    }
}

impl<'a> Shim<'a> {
    pub fn new(
        args: &'a Args,
        runtime: Runtime,
        listener: UnixListener,
        signals: SignalFd,
        log: log::Writer,
        init: i32,
        stdio: Plumbing,
    ) -> Shim<'a> {
        Shim {
            args,
            runtime,
            listener,
            signals,
            log,
            lines: Default::default(),
            init,
            shared_pid: crate::runtime::shares_pid_namespace(&args.bundle),
            started: false,
            daemon: None,
            start_error: None,
            ending: None,
            stdio,
            clients: HashMap::new(),
            next_client: 0,
            execs: HashMap::new(),
        }
    }

    pub fn init_pid(&self) -> i32 {
        self.init
    }

    /// The runtime's `run --detach` started the container with its create (`--start`).
    pub fn started_at_once(&mut self) {
        self.started = true;
    }

    /// Keep the ready pipe (after writing "created" to it) until the start.
    pub fn hold_until_start(&mut self, ready: std::fs::File) {
        self.daemon = Some(ready);
    }

    /// berthd is gone before it started the container (killed mid-start): the restarted
    /// one sees the container as not running, so the created init is deleted and the shim
    /// ends as after a failed start, instead of waiting forever for a start.
    fn abandon(&mut self) {
        self.daemon = None;
        if !self.started && self.start_error.is_none() {
            self.start_error = Some("berthd went away before starting the container".into());
            self.runtime.delete();
        }
    }

    /// Serve until the container has ended and its output is drained; then the exit record
    /// is written to the exit file and sent to the waiting clients.
    pub fn serve(mut self) -> anyhow::Result<()> {
        loop {
            if let Some((_, since)) = &self.ending {
                let drained = self.stdio.outputs.iter().all(|o| !o.open)
                    && self.execs.is_empty()
                    && self.clients.values().all(|c| c.queue.is_empty());
                if drained || since.elapsed() > DRAIN {
                    break;
                }
            }
            let timeout = if self.ending.is_some() {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            for (token, flags) in self.wait(timeout) {
                self.handle(token, flags);
            }
        }
        self.finish()
    }

    fn wait(&self, timeout: PollTimeout) -> Vec<(Token, PollFlags)> {
        let mut tokens: Vec<Token> = Vec::new();
        let mut fds: Vec<PollFd<'_>> = Vec::new();
        fn push<'f>(
            tokens: &mut Vec<Token>,
            fds: &mut Vec<PollFd<'f>>,
            token: Token,
            fd: BorrowedFd<'f>,
            flags: PollFlags,
        ) {
            tokens.push(token);
            fds.push(PollFd::new(fd, flags));
        }
        macro_rules! add {
            ($token:expr, $fd:expr, $flags:expr $(,)?) => {
                push(&mut tokens, &mut fds, $token, $fd, $flags)
            };
        }
        add!(Token::Signals, self.signals.as_fd(), PollFlags::POLLIN);
        add!(Token::Listener, self.listener.as_fd(), PollFlags::POLLIN);
        if let Some(daemon) = &self.daemon {
            // A pipe's write end reports POLLERR once its reader is gone.
            add!(Token::Daemon, daemon.as_fd(), PollFlags::empty());
        }
        for (i, out) in self.stdio.outputs.iter().enumerate() {
            if out.open && !self.attach_backed_up(out.stream) {
                add!(Token::Output(i), out.file.as_fd(), PollFlags::POLLIN);
            }
        }
        if let Some(input) = self.stdio.input.as_ref().filter(|i| i.has_pending()) {
            if let Some(f) = input.file() {
                add!(Token::Input, f.as_fd(), PollFlags::POLLOUT);
            }
        }
        for (id, exec) in &self.execs {
            let backed_up = self
                .clients
                .get(&exec.client)
                .is_some_and(Client::backed_up);
            for (i, out) in exec.stdio.outputs.iter().enumerate() {
                if out.open && !backed_up {
                    add!(
                        Token::ExecOutput(id.clone(), i),
                        out.file.as_fd(),
                        PollFlags::POLLIN,
                    );
                }
            }
            if let Some(input) = exec.stdio.input.as_ref().filter(|i| i.has_pending()) {
                if let Some(f) = input.file() {
                    add!(Token::ExecInput(id.clone()), f.as_fd(), PollFlags::POLLOUT);
                }
            }
        }
        for (id, client) in &self.clients {
            let flags = client.interest(self.may_read(client));
            if !flags.is_empty() {
                add!(Token::Client(*id), client.stream.as_fd(), flags);
            }
        }
        loop {
            match poll(&mut fds, timeout) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth-shim: poll: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    return Vec::new();
                }
            }
        }
        tokens
            .into_iter()
            .zip(fds.iter())
            .filter_map(|(t, fd)| fd.revents().filter(|r| !r.is_empty()).map(|r| (t, r)))
            .collect()
    }

    /// Input is read from a client only when its destination can take it (or is gone, and
    /// the input is dropped).
    fn may_read(&self, client: &Client) -> bool {
        let sink_ready = |p: &Plumbing| {
            p.input
                .as_ref()
                .is_none_or(|i| i.ready() || i.file().is_none())
        };
        match &client.role {
            Role::Attach { stdin: true, .. } => sink_ready(&self.stdio),
            Role::Exec(id) => self.execs.get(id).is_none_or(|e| sink_ready(&e.stdio)),
            _ => true,
        }
    }

    /// Whether an attached client that takes `stream` has as much queued as it may.
    fn attach_backed_up(&self, stream: u8) -> bool {
        self.clients
            .values()
            .any(|c| Self::attach_wants(c, stream) && c.backed_up())
    }

    fn attach_wants(client: &Client, stream: u8) -> bool {
        match client.role {
            Role::Attach { stdout, stderr, .. } => {
                if stream == STDOUT {
                    stdout
                } else {
                    stderr
                }
            }
            _ => false,
        }
    }

    fn handle(&mut self, token: Token, flags: PollFlags) {
        match token {
            Token::Signals => self.reap(),
            Token::Daemon => self.abandon(),
            Token::Listener => self.accept(),
            Token::Output(i) => {
                let Some(out) = self.stdio.outputs.get_mut(i) else {
                    return;
                };
                let stream = out.stream;
                let data = out.read_available();
                if !data.is_empty() {
                    self.container_output(stream, &data);
                }
            }
            Token::Input => {
                if let Some(input) = self.stdio.input.as_mut() {
                    input.flush();
                }
            }
            Token::Client(id) => {
                let hangup = PollFlags::POLLERR | PollFlags::POLLHUP;
                if flags.intersects(PollFlags::POLLOUT | hangup) {
                    self.flush_client(id);
                }
                let reading = self
                    .clients
                    .get(&id)
                    .is_some_and(|c| !c.read_closed && !c.closing);
                if reading && flags.intersects(PollFlags::POLLIN | hangup) {
                    self.client_readable(id);
                }
            }
            Token::ExecOutput(id, i) => self.exec_output(&id, i),
            Token::ExecInput(id) => {
                if let Some(input) = self.execs.get_mut(&id).and_then(|e| e.stdio.input.as_mut()) {
                    input.flush();
                }
            }
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            let status = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => status,
            };
            let Some((pid, code)) = exit_code(status) else {
                continue;
            };
            if pid == self.init {
                self.init_exited(code);
            } else if let Some(id) = self
                .execs
                .iter()
                .find(|(_, e)| e.pid == pid)
                .map(|(id, _)| id.clone())
            {
                self.exec_exited(&id, code);
            }
            // Anything else was an orphan of the container, reparented to us: reaped.
        }
    }

    /// The container's pid namespace dies with its init, so its output ends soon after;
    /// the runtime's delete waits until the exit has been reported. Without a pid namespace
    /// of its own the rest of the container is killed.
    fn init_exited(&mut self, code: i32) {
        if self.shared_pid {
            // No pid namespace of its own died with init: what it left running (holding
            // the output open) is killed now, as containerd's shim does.
            self.runtime.kill_all();
        }
        let error = self.start_error.clone();
        let mut record = crate::exit_record(code, error.as_deref());
        record["oom_killed"] = self.runtime.oom_killed().into();
        self.ending = Some((record, Instant::now()));
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    // Nonblocking: a slow or stuck client never stalls the shim; its
                    // output waits in its queue.
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_client += 1;
                    self.clients.insert(self.next_client, Client::new(stream));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn client_readable(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let mut buf = vec![0u8; 64 * 1024];
        match client.stream.read(&mut buf) {
            Ok(0) => self.client_eof(id),
            Ok(n) => self.client_data(id, &buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => self.lose_client(id),
        }
    }

    /// A client that went away without ending its input: the input it fed ends as at its
    /// end (stdin-once, an exec's), so that the process is not left waiting for more.
    fn lose_client(&mut self, id: u64) {
        self.client_eof(id);
        self.clients.remove(&id);
    }

    fn client_data(&mut self, id: u64, data: &[u8]) {
        let Some(client) = self.clients.get_mut(&id).filter(|c| !c.closing) else {
            return;
        };
        match &mut client.role {
            Role::Handshake(buf) => {
                buf.extend_from_slice(data);
                let Some(pos) = buf.iter().position(|b| *b == b'\n') else {
                    if buf.len() > MAX_REQUEST {
                        self.clients.remove(&id);
                    }
                    return;
                };
                let rest = buf.split_off(pos + 1);
                let line = std::mem::take(buf);
                self.request(id, &line);
                if !rest.is_empty() {
                    self.client_data(id, &rest);
                }
            }
            // Input for the container or the exec; dropped for the other roles.
            _ => {
                if let Some(input) = self.input_fed_by(id) {
                    input.push(data);
                }
            }
        }
    }

    /// The input a client feeds: the container's (an attach with stdin) or its exec's.
    fn input_fed_by(&mut self, id: u64) -> Option<&mut Sink> {
        match &self.clients.get(&id)?.role {
            Role::Attach { stdin: true, .. } => self.stdio.input.as_mut(),
            Role::Exec(exec) => {
                let exec = exec.clone();
                self.execs.get_mut(&exec)?.stdio.input.as_mut()
            }
            _ => None,
        }
    }

    fn client_eof(&mut self, id: u64) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        client.read_closed = true;
        match &client.role {
            Role::Handshake(_) | Role::Wait => {
                self.clients.remove(&id);
            }
            // An attach closes the container's input only with stdin-once; an exec's
            // input always ends with its client's.
            Role::Attach { .. } if !self.args.stdin_once => {}
            _ => {
                if let Some(input) = self.input_fed_by(id) {
                    input.close_when_drained();
                }
            }
        }
    }

    /// Answer a request line; the client's role follows from it.
    fn request(&mut self, id: u64, line: &[u8]) {
        let mut replay = Vec::new();
        let outcome = match serde_json::from_slice::<Request>(line) {
            Ok(request) => {
                if let Request::Attach {
                    logs: true,
                    stdout,
                    stderr,
                    ..
                } = request
                {
                    replay = self.unlogged(stdout, stderr);
                }
                self.serve_request(id, request)
            }
            Err(e) => Err(format!("invalid request: {e}")),
        };
        let answer = match &outcome {
            Ok(detail) if detail.is_empty() => "ok\n".to_string(),
            Ok(detail) => format!("ok {detail}\n"),
            Err(msg) => format!("error {}\n", msg.replace('\n', " ")),
        };
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        let keep = outcome.is_ok() && !matches!(client.role, Role::Handshake(_));
        self.send(id, answer.as_bytes());
        if keep && !replay.is_empty() {
            self.send(id, &replay);
        }
        if !keep {
            self.close_client(id);
        }
    }

    fn serve_request(&mut self, id: u64, request: Request) -> Result<String, String> {
        match request {
            Request::Attach {
                stdin,
                stdout,
                stderr,
                logs,
            } => {
                self.set_role(
                    id,
                    Role::Attach {
                        stdin,
                        stdout,
                        stderr,
                    },
                );
                let position = self
                    .log
                    .position()
                    .filter(|_| logs)
                    .map(|(inode, size)| LogPosition { inode, size });
                Ok(position
                    .and_then(|p| serde_json::to_string(&p).ok())
                    .unwrap_or_default())
            }
            Request::Wait => {
                self.set_role(id, Role::Wait);
                Ok(String::new())
            }
            Request::Start => self.start(),
            Request::ReopenLog => self.log.reopen().map(|()| String::new()),
            Request::Resize {
                exec,
                height,
                width,
            } => {
                let console = match &exec {
                    None => self.stdio.console.as_ref(),
                    Some(e) => self.execs.get(e).and_then(|e| e.stdio.console.as_ref()),
                };
                let console = console.ok_or("no terminal to resize")?;
                berth_runtime::sys::tty::set_winsize(console.as_fd(), height, width)
                    .map_err(|e| format!("resize: {e}"))?;
                Ok(String::new())
            }
            Request::Exec {
                id: exec_id,
                process,
                stdin,
            } => {
                if !self.started || self.ending.is_some() {
                    return Err("the container is not running".into());
                }
                if self.execs.contains_key(&exec_id) {
                    return Err(format!("exec {exec_id} is already running"));
                }
                let (pid, stdio) = crate::exec::spawn(&self.runtime, &exec_id, &process, stdin)
                    .map_err(|e| format!("{e:#}"))?;
                self.execs.insert(
                    exec_id.clone(),
                    Exec {
                        pid,
                        stdio,
                        client: id,
                    },
                );
                self.set_role(id, Role::Exec(exec_id));
                Ok(pid.to_string())
            }
        }
    }

    fn set_role(&mut self, id: u64, role: Role) {
        if let Some(client) = self.clients.get_mut(&id) {
            client.role = role;
        }
    }

    fn start(&mut self) -> Result<String, String> {
        if self.started {
            return Err("the container was already started".into());
        }
        self.daemon = None;
        match self.runtime.start() {
            Ok(()) => {
                self.started = true;
                Ok(self.init.to_string())
            }
            Err(e) => {
                let msg = format!("{e:#}");
                self.start_error = Some(msg.clone());
                // The created init is killed; its exit ends the shim.
                self.runtime.delete();
                Err(msg)
            }
        }
    }

    /// Frames of the output the log does not hold yet (the lines not ended), of the chosen
    /// streams: what an attach that replays the log would otherwise miss.
    fn unlogged(&self, stdout: bool, stderr: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, (stream, wanted)) in [(STDOUT, stdout), (STDERR, stderr)].into_iter().enumerate() {
            let pending = self.lines[i].pending();
            if wanted && !pending.is_empty() {
                out.extend(frame(stream, pending));
            }
        }
        out
    }

    fn container_output(&mut self, stream: u8, data: &[u8]) {
        let idx = usize::from(stream == STDERR);
        self.lines[idx].push(data, stream_name(stream), &mut self.log);
        let bytes = frame(stream, data);
        let attached: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| Self::attach_wants(c, stream))
            .map(|(id, _)| *id)
            .collect();
        for id in attached {
            self.send(id, &bytes);
        }
    }

    fn exec_output(&mut self, id: &str, i: usize) {
        let Some(exec) = self.execs.get_mut(id) else {
            return;
        };
        let Some(out) = exec.stdio.outputs.get_mut(i) else {
            return;
        };
        let stream = out.stream;
        let data = out.read_available();
        let client = exec.client;
        if !data.is_empty() {
            self.send(client, &frame(stream, &data));
        }
    }

    /// Queue `bytes` for a client and write what it takes now.
    fn send(&mut self, client: u64, bytes: &[u8]) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.queue.extend_from_slice(bytes);
        }
        self.flush_client(client);
    }

    fn flush_client(&mut self, client: u64) {
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        if c.flush().is_err() {
            self.lose_client(client);
        } else if c.closing && c.queue.is_empty() {
            self.clients.remove(&client);
        }
    }

    /// The client's stream is over: it goes once what is queued for it is written.
    fn close_client(&mut self, client: u64) {
        if let Some(c) = self.clients.get_mut(&client) {
            c.closing = true;
        }
        self.flush_client(client);
    }

    /// An exec'd process ended: what it wrote last, then its status, then the end.
    fn exec_exited(&mut self, id: &str, code: i32) {
        let Some(mut exec) = self.execs.remove(id) else {
            return;
        };
        let mut frames = Vec::new();
        for out in exec.stdio.outputs.iter_mut() {
            // Bounded: a background process could keep writing to the pipe.
            for _ in 0..64 {
                let data = out.read_available();
                if data.is_empty() {
                    break;
                }
                frames.extend(frame(out.stream, &data));
            }
        }
        frames.extend(frame(EXIT, &code.to_be_bytes()));
        self.send(exec.client, &frames);
        self.close_client(exec.client);
    }

    /// The container has ended: the last output, the exit file, then the waiting clients.
    fn finish(mut self) -> anyhow::Result<()> {
        for i in 0..self.stdio.outputs.len() {
            for _ in 0..64 {
                let out = &mut self.stdio.outputs[i];
                let stream = out.stream;
                let data = out.read_available();
                if data.is_empty() {
                    break;
                }
                self.container_output(stream, &data);
            }
        }
        for (i, stream) in [STDOUT, STDERR].into_iter().enumerate() {
            self.lines[i].flush(stream_name(stream), &mut self.log);
        }
        let record = self
            .ending
            .take()
            .map(|(r, _)| r)
            .unwrap_or_else(|| crate::exit_record(255, None));
        let written = crate::write_exit(&self.args.exit_file, &record);
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        // What the serve loop did not get written (a client that stopped reading) gets
        // one more chance, without waiting for it.
        let ids: Vec<u64> = self.clients.keys().copied().collect();
        for id in ids {
            self.flush_client(id);
        }
        // The waiters learn of the exit now; attached clients see their stream end. Wait
        // connections stay open until the delete is done: their end says the shim is gone.
        // The line is short and the only thing a waiter is sent: a blocking write with a
        // bound delivers it.
        self.clients.retain(|_, client| {
            matches!(client.role, Role::Wait)
                && client.stream.set_nonblocking(false).is_ok()
                && client
                    .stream
                    .set_write_timeout(Some(Duration::from_secs(5)))
                    .is_ok()
                && client.stream.write_all(&line).is_ok()
        });
        // Whatever else is in the container's cgroup goes with it.
        self.runtime.delete();
        let _ = std::fs::remove_file(berth_shim_protocol::SOCKET);
        written
    }
}
