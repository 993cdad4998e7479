//! Test harness: the real server (the same `App` and warp stack `sandgate serve` runs) on an
//! ephemeral port, with its own data directory, spoken to over real HTTP.
#![allow(dead_code)]

pub mod postgres;
pub mod upstream;

use reqwest::blocking::Client;
use sandgate::App;
use sandgate::config::{Config, Overrides, parse_toml};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

pub struct TestServer {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    pub base: String,
    pub client: Client,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Compiled strategies are cached across tests (one compile per strategy per test run).
pub fn shared_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("strategy-cache")
}

impl TestServer {
    pub fn start() -> Self {
        Self::with_config("")
    }

    /// `toml` is a Sandgate config file's text; the data directory is a fresh temp dir.
    pub fn with_config(toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut server = Self::start_in(&path, toml);
        server._dir = Some(dir);
        server
    }

    pub fn start_in(data_dir: &Path, toml: &str) -> Self {
        let mut file = parse_toml(toml).expect("test config");
        if file.server.cache_dir.is_none() {
            // Shared by the servers of a test run: what one compiled, the others load; none
            // removes an artifact another may be using.
            file.server.cache_dir = Some(shared_cache());
            file.server.cache_keep_unused.get_or_insert(sandgate::config::Duration::Text("1h".into()));
        }
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.to_path_buf()),
            ..Overrides::default()
        };
        let mut config = Config::resolve(file, &overrides).expect("config");
        // Uploads compile in a child process as under `sandgate serve` (the test binary is
        // not the sandgate binary: name it).
        config.compiler = sandgate::sandbox::compile::Compiler::Child(PathBuf::from(env!("CARGO_BIN_EXE_sandgate")));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = sandgate::api::bind(config.listen).await.unwrap();
                let addr = listener.local_addr().unwrap();
                let app = tokio::task::spawn_blocking(move || App::start(config)).await.unwrap().expect("start");
                ready_tx.send((app.clone(), addr)).unwrap();
                sandgate::api::serve(app, listener, async move {
                    let _ = shutdown_rx.await;
                })
                .await;
            });
        });
        let (app, addr) = ready_rx.recv().expect("server started");
        TestServer {
            app,
            addr,
            base: format!("http://{addr}"),
            client: Client::builder()
                .timeout(std::time::Duration::from_secs(60))
                // A login may answer a redirect (302 to an OpenID provider): the tests look at it.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server, keeping its data directory (for restart tests).
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        self.halt();
        self._dir.take()
    }

    fn halt(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request; returns (status, headers, JSON body).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut req = self.client.request(method.parse().unwrap(), self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body);
        }
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        (status, headers, json)
    }

    pub fn call(&self, method: &str, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let (status, _, json) = self.send(method, path, body.map(|b| b.to_string()), &headers);
        assert_eq!(status as u64, json["status"].as_u64().unwrap(), "HTTP status = envelope status: {json}");
        (status, json)
    }

    pub fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        self.call("POST", path, Some(body), token)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.call("GET", path, None, token)
    }

    pub fn login(&self, username: &str, password: &str) -> (u16, Value) {
        self.post("/_login/local", json!({ "username": username, "password": password }), None)
    }

    /// Logs in and returns the token, failing the test otherwise.
    pub fn token(&self, username: &str, password: &str) -> String {
        let (status, body) = self.login(username, password);
        assert_eq!(status, 200, "login {username}: {body}");
        body["result"]["jwt"].as_str().unwrap().to_string()
    }

    /// Creates the first admin (`admin` / `admin-password`) and returns its token.
    pub fn admin(&self) -> String {
        let (status, body) = self.post(
            "/_createFirstAdmin/admin",
            json!({ "credentials": { "local": { "username": "admin", "password": "admin-password" } } }),
            None,
        );
        assert_eq!(status, 200, "{body}");
        self.token("admin", "admin-password")
    }

    /// Creates a `default` user with local credentials.
    pub fn user(&self, admin: &str, kuid: &str, username: &str, password: &str) {
        let (status, body) = self.post(
            &format!("/users/{kuid}/_create"),
            json!({ "content": { "profileIds": ["default"] },
                    "credentials": { "local": { "username": username, "password": password } } }),
            Some(admin),
        );
        assert_eq!(status, 200, "{body}");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Asserts a Kuzzle error: status, id, and the envelope's `result: null`.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, id: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["error"]["id"], id, "{body}");
    assert_eq!(body["error"]["status"], status, "{body}");
    assert!(body["error"]["code"].as_u64().unwrap() > 0, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(body["result"], Value::Null);
}

/// A component built by `make strategies` (never committed).
pub fn component(file: &str) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip2/strategy").join(format!("{file}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} — run `make strategies` first", path.display()))
}

impl TestServer {
    /// `PUT /strategies/:name` with the raw component.
    pub fn upload(&self, token: Option<&str>, name: &str, wasm: &[u8], query: &str) -> (u16, Value) {
        let mut req = self
            .client
            .put(self.url(&format!("/strategies/{name}{query}")))
            .header("content-type", "application/wasm")
            .body(wasm.to_vec());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().expect("upload");
        let status = resp.status().as_u16();
        (status, resp.json().expect("JSON"))
    }

    /// Uploads and asserts success.
    pub fn register(&self, admin: &str, name: &str, file: &str, query: &str) -> Value {
        let (status, body) = self.upload(Some(admin), name, &component(file), query);
        assert_eq!(status, 200, "register {name}: {body}");
        body["result"].clone()
    }

    /// Creates a `default` user holding credentials for the given strategies.
    pub fn user_with(&self, admin: &str, kuid: &str, credentials: Value) -> Value {
        let (status, body) = self.post(
            &format!("/users/{kuid}/_create"),
            json!({ "content": { "profileIds": ["default"] }, "credentials": credentials }),
            Some(admin),
        );
        assert_eq!(status, 200, "{body}");
        body["result"].clone()
    }
}
