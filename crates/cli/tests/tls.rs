//! TLS without tcl-tls end to end: `tclcomm serve --tls-cert` (the Tcl
//! package, `::comm::tls`, rustls inside) answered by `tclcomm send
//! --tls-ca` (driver 1, `Transport::Tls`), with 2048-bit certificates made
//! here with openssl (missing, the test fails).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Server, run};

/// A CA, server and client certificates it signed (localhost, 127.0.0.1),
/// and another CA, in a fresh directory.
fn make_certs() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tclcomm-cli-tls-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    tclcomm::testing::make_test_certs(&dir);
    // Another CA, which signed nothing of ours.
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.pem",
            "-days",
            "2",
            "-subj",
            "/CN=another CA",
        ])
        .current_dir(&dir)
        .output()
        .expect("this test needs openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl: {out:?}");
    dir
}

fn p(dir: &Path, name: &str) -> String {
    dir.join(name).to_string_lossy().into_owned()
}

#[test]
fn serve_with_tls_answers_send_with_tls() {
    let d = make_certs();
    let (ca, other) = (p(&d, "ca.pem"), p(&d, "other.pem"));
    let (ccert, ckey) = (p(&d, "client.pem"), p(&d, "client.key"));
    let mut s = Server::start(&[
        "--tls-cert",
        &p(&d, "server.pem"),
        "--tls-key",
        &p(&d, "server.key"),
        "--tls-ca",
        &ca,
        "--tls-require-client-cert",
    ]);
    let tls = ["--tls-ca", &ca, "--tls-cert", &ccert, "--tls-key", &ckey];
    let send = |extra: &[&str], script: &str| {
        let mut args = vec!["send"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&s.id, script]);
        run(&args)
    };
    let r = send(&tls, "expr {6*7}");
    assert_eq!(
        (r.code, r.out().as_str()),
        (Some(0), "42\n"),
        "{}",
        r.stderr
    );
    // A large answer crosses many TLS records.
    let r = send(&tls, "string length [string repeat é 2000000]");
    assert_eq!(r.out(), "2000000\n", "{}", r.stderr);
    let r = send(&tls, "string repeat ab 500000");
    assert_eq!(r.out().len(), 1_000_001, "{}", r.stderr);
    // Refused: a plain client, a client without a certificate, a client
    // that does not trust the server's CA (with the reason).
    let r = send(&["--timeout", "20"], "expr 1");
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = send(&["--timeout", "20", "--tls-ca", &ca], "expr 1");
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let r = send(
        &["--tls-ca", &other, "--tls-cert", &ccert, "--tls-key", &ckey],
        "expr 1",
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("UnknownIssuer"), "{}", r.stderr);
    // And still serving.
    let r = send(&tls, "expr {1+1}");
    assert_eq!(r.out(), "2\n", "{}", r.stderr);
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_package_in_serve_calls_a_rust_runtime_over_tls() {
    use std::sync::Arc;
    use tclcomm::blocking::Channel;
    use tclcomm::{Config, Dispatcher, TlsConfig, Transport};
    let d = make_certs();
    let read = |f: &str| std::fs::read(d.join(f)).expect("cert file");
    // Driver 1 listening with TLS (its server side: no client certificates).
    let tls = TlsConfig::from_pem(&read("server.pem"), &read("server.key"), &read("ca.pem"))
        .expect("TLS config");
    let echo = Dispatcher::new();
    echo.register("echo", |_c, a| Ok(a.concat()));
    let rust = Channel::new(
        Config::listening()
            .transport(Transport::Tls(Arc::new(tls)))
            .evaluator(echo),
    )
    .expect("rust channel");
    let rust_id = rust.self_id().to_string();
    // The package (serve) connects out over TLS with its -cafile.
    let mut s = Server::start(&[
        "--tls-cert",
        &p(&d, "client.pem"),
        "--tls-key",
        &p(&d, "client.key"),
        "--tls-ca",
        &p(&d, "ca.pem"),
    ]);
    let script = format!("::comm::comm send {rust_id} {{echo over rustls}}");
    let r = run(&["send", "--tls-ca", &p(&d, "ca.pem"), &s.id, &script]);
    assert_eq!(r.out(), "overrustls\n", "{}", r.stderr);
    assert_eq!(s.terminate(Duration::from_secs(10)), Some(0));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn serve_refuses_a_bad_tls_setting_clearly() {
    let d = make_certs();
    let r = run(&[
        "serve",
        "--tls-cert",
        &p(&d, "nosuch.pem"),
        "--tls-key",
        &p(&d, "server.key"),
    ]);
    assert_eq!(r.code, Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("couldn't read -certfile") && r.stderr.contains("nosuch.pem"),
        "{}",
        r.stderr
    );
    let _ = std::fs::remove_dir_all(&d);
}
