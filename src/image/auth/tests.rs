use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn basic(u: &str, p: &str) -> Credentials {
    Credentials::Basic {
        username: u.into(),
        password: p.into(),
    }
}

fn sample() -> AuthFile {
    let json = serde_json::json!({
        "auths": {
            "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
            "docker.io/myorg": {"auth": b64("orguser:orgpass")},
            "registry-1.docker.io/myorg/special": {"registrytoken": "hub-rt"},
            "localhost:5000": {"auth": b64("local:lpw")},
            "http://insecure.example:8080": {"username": "u2", "password": "p2"},
            "https://secure.example/v2/": {"auth": b64("<token>:"), "identitytoken": "id-tok"},
            "quay.io": {"auth": b64("quay:all")},
            "quay.io/team": {"auth": b64("quay:team")},
            "quay.io/team/app/": {"registrytoken": "rt"},
            "Upper.Example": {"auth": b64("up:pw\u{0}\u{0}")},
            "helper.example": {},
            "[::1]:5000": {"auth": "bnVsbDpudWxs"}
        },
        "credsStore": "desktop"
    });
    AuthFile::from_json(&json.to_string(), "/etc/test/auth.json").unwrap()
}

#[test]
fn lookup_all_key_forms() {
    let f = sample();
    // URL key for Docker Hub, found under every name of the hub.
    for host in [
        "docker.io",
        "index.docker.io",
        "registry-1.docker.io",
        "DOCKER.IO",
    ] {
        assert_eq!(
            f.lookup(host, "library/busybox"),
            basic("hubuser", "hubpass"),
            "{host}"
        );
    }
    assert_eq!(f.lookup("localhost:5000", "a/b"), basic("local", "lpw"));
    assert_eq!(f.lookup("insecure.example:8080", "x"), basic("u2", "p2"));
    assert_eq!(
        f.lookup("secure.example", "x"),
        Credentials::IdentityToken {
            username: "<token>".into(),
            token: "id-tok".into()
        }
    );
    assert_eq!(f.lookup("upper.example", "x"), basic("up", "pw"));
    assert_eq!(f.lookup("[::1]:5000", "x"), basic("null", "null"));
    // Not listed, a different port, or an empty helper placeholder → anonymous.
    assert_eq!(f.lookup("ghcr.io", "x"), Credentials::Anonymous);
    assert_eq!(f.lookup("localhost:5001", "x"), Credentials::Anonymous);
    assert_eq!(f.lookup("helper.example", "x"), Credentials::Anonymous);
}

#[test]
fn longest_prefix_wins() {
    let f = sample();
    assert_eq!(f.lookup("quay.io", "other/app"), basic("quay", "all"));
    assert_eq!(f.lookup("quay.io", "team/x"), basic("quay", "team"));
    assert_eq!(
        f.lookup("quay.io", "team/app"),
        Credentials::RegistryToken("rt".into())
    );
    assert_eq!(
        f.lookup("quay.io", "team/app/sub"),
        Credentials::RegistryToken("rt".into())
    );
    // Prefixes match whole path components only.
    assert_eq!(f.lookup("quay.io", "teammate/x"), basic("quay", "all"));
    assert_eq!(
        f.lookup("quay.io", "team/application"),
        basic("quay", "team")
    );
    assert_eq!(
        f.lookup("docker.io", "myorg/app"),
        basic("orguser", "orgpass")
    );
    assert_eq!(
        f.lookup("docker.io", "myorg/special"),
        Credentials::RegistryToken("hub-rt".into())
    );
    assert_eq!(f.lookup("quay.io", ""), basic("quay", "all"));
}

#[test]
fn bare_key_beats_url_key_for_same_host() {
    let json = serde_json::json!({"auths": {
        "https://index.docker.io/v1/": {"auth": b64("url:u")},
        "docker.io": {"auth": b64("bare:b")}
    }});
    let f = AuthFile::from_json(&json.to_string(), "t").unwrap();
    assert_eq!(f.lookup("docker.io", "library/x"), basic("bare", "b"));
}

#[test]
fn entry_precedence() {
    let json = serde_json::json!({"auths": {
        "a.io": {"auth": b64("u:p"), "username": "ignored", "password": "ignored", "registrytoken": "rt", "identitytoken": "it"},
        "b.io": {"auth": b64("u:p"), "identitytoken": "it"},
        "c.io": {"auth": b64("u:p"), "username": "other", "password": "other"},
        "d.io": {"username": "user", "password": null},
        "e.io": {"identitytoken": "it"}
    }});
    let f = AuthFile::from_json(&json.to_string(), "t").unwrap();
    assert_eq!(
        f.lookup("a.io", "x"),
        Credentials::RegistryToken("rt".into())
    );
    assert_eq!(
        f.lookup("b.io", "x"),
        Credentials::IdentityToken {
            username: "u".into(),
            token: "it".into()
        }
    );
    assert_eq!(f.lookup("c.io", "x"), basic("u", "p"));
    assert_eq!(f.lookup("d.io", "x"), basic("user", ""));
    assert_eq!(
        f.lookup("e.io", "x"),
        Credentials::IdentityToken {
            username: String::new(),
            token: "it".into()
        }
    );
}

#[test]
fn auth_field_errors_name_file_and_key() {
    let cases = [
        ("!!!not base64", "not valid base64"),
        (b64("nocolon").as_str(), "no ':'"),
        (b64(":pw").as_str(), "empty username"),
    ]
    .map(|(a, m)| (a.to_owned(), m));
    for (auth, want) in cases {
        let json = serde_json::json!({"auths": {"reg.example": {"auth": auth}}});
        let err = AuthFile::from_json(&json.to_string(), "/x/config.json").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("/x/config.json"), "{msg}");
        assert!(msg.contains("\"reg.example\""), "{msg}");
        assert!(msg.contains(want), "{msg}");
    }
    // Unpadded base64 and surrounding whitespace are accepted.
    let json = r#"{"auths": {"r.io": {"auth": " dTpwdw \n"}}}"#;
    let f = AuthFile::from_json(json, "t").unwrap();
    assert_eq!(f.lookup("r.io", "x"), basic("u", "pw"));
    let bad_utf8 = base64::engine::general_purpose::STANDARD.encode([0xff, b':', b'x']);
    let json = serde_json::json!({"auths": {"r.io": {"auth": bad_utf8}}});
    let msg = AuthFile::from_json(&json.to_string(), "t")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not UTF-8"), "{msg}");
}

#[test]
fn json_errors_do_not_quote_values() {
    let err = AuthFile::from_json(r#"{"auths": "hunter2"}"#, "/p/auth.json").unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("/p/auth.json") && !msg.contains("hunter2"),
        "{msg}"
    );
    let msg = AuthFile::from_json("{not json", "/p/auth.json")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("/p/auth.json"), "{msg}");
}

#[test]
fn load_from_disk() {
    let dir = std::env::temp_dir().join(format!("crius-auth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let missing = AuthFile::load(&dir.join("missing.json")).unwrap();
    assert!(missing.entries.is_empty());
    assert_eq!(
        missing.lookup("docker.io", "library/x"),
        Credentials::Anonymous
    );

    let good = dir.join("good.json");
    std::fs::write(
        &good,
        format!(r#"{{"auths":{{"r.io":{{"auth":"{}"}}}}}}"#, b64("a:b")),
    )
    .unwrap();
    assert_eq!(
        AuthFile::load(&good).unwrap().lookup("r.io", "x"),
        basic("a", "b")
    );

    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{").unwrap();
    let msg = AuthFile::load(&bad).unwrap_err().to_string();
    assert!(msg.contains(&bad.display().to_string()), "{msg}");

    // A directory exists but cannot be read as a file.
    let msg = AuthFile::load(&dir).unwrap_err().to_string();
    assert!(msg.contains(&dir.display().to_string()), "{msg}");

    std::fs::remove_dir_all(&dir).unwrap();
}

fn cri<'a>(u: &'a str, p: &'a str, a: &'a str, it: &'a str, rt: &'a str) -> CriAuth<'a> {
    CriAuth {
        username: u,
        password: p,
        auth: a,
        server_address: "reg.example",
        identity_token: it,
        registry_token: rt,
    }
}

#[test]
fn cri_precedence() {
    let a = b64("au:ap");
    assert_eq!(
        from_cri(&cri("u", "p", &a, "it", "rt")).unwrap(),
        basic("u", "p")
    );
    assert_eq!(
        from_cri(&cri("", "p", &a, "it", "rt")).unwrap(),
        basic("au", "ap")
    );
    assert_eq!(
        from_cri(&cri("", "p", "", "it", "rt")).unwrap(),
        Credentials::IdentityToken {
            username: String::new(),
            token: "it".into()
        }
    );
    assert_eq!(
        from_cri(&cri("", "", "", "", "rt")).unwrap(),
        Credentials::RegistryToken("rt".into())
    );
    assert_eq!(
        from_cri(&cri("", "", "", "", "")).unwrap(),
        Credentials::Anonymous
    );
    assert_eq!(from_cri(&cri("u", "", "", "", "")).unwrap(), basic("u", ""));

    let msg = from_cri(&cri("", "", "%%%", "", ""))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("CRI AuthConfig") && msg.contains("reg.example"),
        "{msg}"
    );
    let msg = from_cri(&cri("", "", &b64("secretnocolon"), "", ""))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no ':'") && !msg.contains("secret"), "{msg}");
}

#[test]
fn debug_redacts_secrets() {
    let secrets = ["s3cret-pass", "s3cret-token", "s3cret-rt"];
    let values = [
        basic("alice", "s3cret-pass"),
        Credentials::IdentityToken {
            username: "bob".into(),
            token: "s3cret-token".into(),
        },
        Credentials::RegistryToken("s3cret-rt".into()),
        Credentials::Anonymous,
    ];
    let json = serde_json::json!({"auths": {
        "a.io": {"auth": b64("alice:s3cret-pass")},
        "b.io": {"identitytoken": "s3cret-token"},
        "c.io": {"registrytoken": "s3cret-rt"}
    }});
    let file = AuthFile::from_json(&json.to_string(), "t").unwrap();
    let cri_auth = cri("alice", "s3cret-pass", "", "s3cret-token", "s3cret-rt");
    let mut outputs: Vec<String> = values.iter().map(|v| format!("{v:?} {v:#?}")).collect();
    outputs.push(format!("{file:?}"));
    outputs.push(format!("{cri_auth:?}"));
    for out in &outputs {
        for s in secrets {
            assert!(!out.contains(s), "{out}");
        }
    }
    assert!(outputs[0].contains("alice"));
}

/// One request as seen by the test server.
struct Seen {
    method: String,
    path: String,
    body: String,
}

/// Serves one canned response per connection on 127.0.0.1 and reports each request.
/// `{base}` in a response is replaced by the server's own URL.
fn serve(responses: Vec<String>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    let base2 = base.clone();
    std::thread::spawn(move || {
        for response in responses {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            tx.send(Seen {
                method,
                path,
                body: String::from_utf8(body).unwrap(),
            })
            .unwrap();
            let mut stream = stream;
            stream
                .write_all(response.replace("{base}", &base2).as_bytes())
                .unwrap();
        }
    });
    (base, rx)
}

fn response(status: &str, headers: &[&str], body: &str) -> String {
    let mut r = format!(
        "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn id_token() -> Credentials {
    Credentials::IdentityToken {
        username: "<token>".into(),
        token: "refresh-me".into(),
    }
}

fn unauthorized() -> String {
    response(
        "401 Unauthorized",
        &[
            r#"WWW-Authenticate: Bearer realm="{base}/token",service="test.registry",scope="repository:a/b:pull,push""#,
        ],
        "",
    )
}

#[tokio::test]
async fn identity_token_exchange() {
    let (base, seen) = serve(vec![
        unauthorized(),
        response(
            "200 OK",
            &["Content-Type: application/json"],
            r#"{"access_token":"acc-1","expires_in":300}"#,
        ),
    ]);
    let auth = resolve(&id_token(), &client(), &format!("{base}/"), "team/app")
        .await
        .unwrap();
    assert_eq!(auth, RegistryAuth::Bearer("acc-1".into()));

    let ping = seen.recv().unwrap();
    assert_eq!((ping.method.as_str(), ping.path.as_str()), ("GET", "/v2/"));
    let post = seen.recv().unwrap();
    assert_eq!(
        (post.method.as_str(), post.path.as_str()),
        ("POST", "/token")
    );
    let mut fields: Vec<&str> = post.body.split('&').collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "client_id=crius",
            "grant_type=refresh_token",
            "refresh_token=refresh-me",
            "scope=repository%3Ateam%2Fapp%3Apull",
            "service=test.registry",
        ]
    );
}

#[tokio::test]
async fn identity_token_exchange_token_field_and_relative_realm() {
    let (base, _seen) = serve(vec![
        response(
            "401 Unauthorized",
            &[
                r#"WWW-Authenticate: Basic realm="x""#,
                r#"WWW-Authenticate: Bearer realm="/auth/token""#,
            ],
            "",
        ),
        response("200 OK", &[], r#"{"token":"tok-2"}"#),
    ]);
    let auth = resolve(&id_token(), &client(), &base, "x").await.unwrap();
    assert_eq!(auth, RegistryAuth::Bearer("tok-2".into()));
}

#[tokio::test]
async fn identity_token_exchange_failures() {
    let (base, _seen) = serve(vec![
        unauthorized(),
        response("401 Unauthorized", &[], "{}"),
    ]);
    let err = resolve(&id_token(), &client(), &base, "x")
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::TokenStatus { status: 401, .. }),
        "{err}"
    );

    let (base, _seen) = serve(vec![
        unauthorized(),
        response("200 OK", &[], r#"{"access_token":""}"#),
    ]);
    let err = resolve(&id_token(), &client(), &base, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::TokenMissing { .. }), "{err}");

    let (base, _seen) = serve(vec![response(
        "401 Unauthorized",
        &[r#"WWW-Authenticate: Basic realm="r""#],
        "",
    )]);
    let err = resolve(&id_token(), &client(), &base, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Challenge { .. }), "{err}");
    assert!(!err.to_string().contains("refresh-me"));

    // A registry that needs no auth: nothing to exchange.
    let (base, _seen) = serve(vec![response("200 OK", &[], "{}")]);
    let auth = resolve(&id_token(), &client(), &base, "x").await.unwrap();
    assert_eq!(auth, RegistryAuth::Anonymous);
}

#[tokio::test]
async fn direct_mappings_make_no_requests() {
    // Port 9 on loopback: any request would fail, proving none is made.
    let http = client();
    let base = "http://127.0.0.1:9";
    let r = |c: Credentials| {
        let http = http.clone();
        async move { resolve(&c, &http, base, "x").await.unwrap() }
    };
    assert_eq!(r(Credentials::Anonymous).await, RegistryAuth::Anonymous);
    assert_eq!(
        r(basic("u", "p")).await,
        RegistryAuth::Basic("u".into(), "p".into())
    );
    assert_eq!(
        r(Credentials::RegistryToken("t".into())).await,
        RegistryAuth::Bearer("t".into())
    );
}

#[test]
fn challenges_prefer_bearer_then_basic() {
    let bearer = |realm: &str, service: Option<&str>| Challenge::Bearer {
        realm: realm.into(),
        service: service.map(Into::into),
    };
    assert_eq!(
        challenge([
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull""#
        ]),
        Some(bearer("https://auth.example/token", Some("reg")))
    );
    // Several challenges in one header or across headers; Bearer wins wherever it is.
    assert_eq!(
        challenge([r#"Basic realm="r", Bearer realm="/token""#]),
        Some(bearer("/token", None))
    );
    assert_eq!(
        challenge([r#"basic realm="r""#, r#"BEARER Realm="/t",Service="s""#]),
        Some(bearer("/t", Some("s")))
    );
    assert_eq!(
        challenge([r#"Basic realm="registry""#]),
        Some(Challenge::Basic)
    );
    // A Bearer challenge without a realm cannot be answered; Basic still can.
    assert_eq!(
        challenge([r#"Bearer service="s""#, "Basic"]),
        Some(Challenge::Basic)
    );
    assert_eq!(challenge([r#"Bearer realm="""#]), None);
    assert_eq!(challenge([r#"Digest realm="r", nonce="n""#]), None);
    assert_eq!(challenge(["not a challenge ,,, ="]), None);
    assert_eq!(challenge([]), None);
}

#[tokio::test]
async fn token_fetch_sends_scope_service_and_basic_credentials() {
    let (base, seen) = serve(vec![response(
        "200 OK",
        &[],
        r#"{"access_token":"a","token":"t"}"#,
    )]);
    let realm = reqwest::Url::parse(&format!("{base}/token?x=1")).unwrap();
    let token = fetch_token(
        &client(),
        realm,
        Some("reg"),
        "repository:a/b:pull",
        &RegistryAuth::Basic("u".into(), "p".into()),
    )
    .await
    .unwrap();
    assert_eq!(token, "t");
    let get = seen.recv().unwrap();
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.path,
        "/token?x=1&scope=repository%3Aa%2Fb%3Apull&service=reg"
    );

    let (base, _seen) = serve(vec![response("403 Forbidden", &[], "")]);
    let realm = reqwest::Url::parse(&format!("{base}/token")).unwrap();
    let err = fetch_token(&client(), realm, None, "s", &RegistryAuth::Anonymous)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::TokenStatus { status: 403, .. }),
        "{err}"
    );
}
