use super::*;
use crate::time::from_micros;

fn at(secs: i64) -> Timestamp {
    from_micros(secs * 1_000_000)
}

fn sealed(name: &str, created: i64, expires: Option<i64>) -> SealedSecret {
    SealedSecret { sealed: name.into(), created_at: at(created), expires_at: expires.map(at) }
}

#[test]
fn the_signature_matches_the_specifications_example() {
    // The example of the Standard Webhooks specification (and of its libraries' tests).
    let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("the spec's secret");
    let header = signature_header(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
    assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

#[test]
fn every_valid_secret_signs_the_current_first() {
    let (a, b) = (SigningSecret::generate(), SigningSecret::generate());
    let header = signature_header(&[a.clone(), b.clone()], "msg", 1, b"{}");
    let parts: Vec<&str> = header.split(' ').collect();
    assert_eq!(parts, [format!("v1,{}", a.sign("msg", 1, b"{}")), format!("v1,{}", b.sign("msg", 1, b"{}"))]);
}

#[test]
fn secrets_are_whsec_and_24_to_64_bytes_and_never_shown_by_debug() {
    let s = SigningSecret::generate();
    assert_eq!(s.bytes().len(), GENERATED_SECRET_BYTES);
    assert!(s.expose().starts_with("whsec_"));
    assert_eq!(SigningSecret::parse(&s.expose()).expect("round trip"), s);
    assert!(!format!("{s:?}").contains(&s.expose()[6..]));
    let b64 = |n: usize| B64.encode(vec![7u8; n]);
    for bad in [b64(32), format!("whsec_{}", b64(23)), format!("whsec_{}", b64(65)), "whsec_not base64!".into(), "whsec_".into()] {
        assert_eq!(SigningSecret::parse(&bad), Err(InvalidSecret), "{bad}");
    }
    for good in [24, 64] {
        assert!(SigningSecret::parse(&format!("whsec_{}", b64(good))).is_ok());
    }
    // The error never repeats what it was given.
    assert!(!InvalidSecret.to_string().contains(&b64(32)));
}

#[test]
fn schemes_are_named_and_deduplicated() {
    let v = |s: &[&str]| validate_schemes(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
    assert_eq!(v(&["standard_webhooks", "jwt", "jwt"]), Ok(vec![Scheme::Jwt, Scheme::StandardWebhooks]));
    assert!(v(&[]).is_err());
    assert!(v(&["hmac"]).is_err());
}

#[test]
fn rotation_retires_the_current_secret_after_the_grace_period() {
    let now = 1_000;
    let start = vec![sealed("a", 0, None)];
    let after = rotate(&start, sealed("b", now, None), Duration::from_secs(3600), at(now)).expect("rotate");
    assert_eq!(after, vec![sealed("b", now, None), sealed("a", 0, Some(now + 3600))]);
    let names = |now: i64| valid_at(&after, at(now)).map(|s| s.sealed.clone()).collect::<Vec<_>>();
    assert_eq!(names(now + 3599), ["b", "a"]);
    assert_eq!(names(now + 3600), ["b"]);
}

#[test]
fn a_rotation_never_extends_an_older_secret_and_grace_zero_revokes_them_all() {
    let now = 10_000;
    let secrets = vec![sealed("b", 5_000, None), sealed("a", 0, Some(now + 60))];
    let after = rotate(&secrets, sealed("c", now, None), Duration::from_secs(7200), at(now)).expect("rotate");
    assert_eq!(after[2], sealed("a", 0, Some(now + 60)), "a keeps its own, earlier end");
    let revoked = rotate(&after, sealed("d", now, None), Duration::ZERO, at(now)).expect("rotate");
    assert_eq!(revoked, vec![sealed("d", now, None)]);
    // Expired secrets are dropped, not kept.
    let later = rotate(&after, sealed("e", now + 100, None), Duration::from_secs(60), at(now + 100)).expect("rotate");
    assert_eq!(later.iter().map(|s| s.sealed.as_str()).collect::<Vec<_>>(), ["e", "c", "b"]);
}

#[test]
fn grace_is_bounded_and_old_secrets_are_at_most_ten() {
    let now = 100;
    assert_eq!(rotate(&[], sealed("x", now, None), MAX_GRACE + Duration::from_secs(1), at(now)), Err(RotateError::GraceTooLong));
    let mut secrets = vec![sealed("s0", 0, None)];
    for i in 1..=MAX_OLD_SECRETS {
        secrets = rotate(&secrets, sealed(&format!("s{i}"), now, None), DEFAULT_GRACE, at(now)).expect("room");
    }
    assert_eq!(secrets.len(), MAX_OLD_SECRETS + 1);
    assert_eq!(rotate(&secrets, sealed("one too many", now, None), DEFAULT_GRACE, at(now)), Err(RotateError::TooManySecrets));
}
