//! The kmsfs volume config (kmsfs/src/format/config.rs). Asserts:
//! parse→encode→parse gives an equal config; inputs over the size cap are
//! refused before parsing; a fuzzed config does not verify under our key
//! (its MAC is not ours), and sealing it makes it verify, also after a
//! JSON round trip, while any changed field fails.
#![no_main]

use kms_fuzz::{peak, reset_peak};
use kmsfs::format::{DataKey, VolumeConfig, config::MAX_CONFIG_FILE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    reset_peak();
    let parsed = VolumeConfig::from_json(data);
    let p = peak();
    assert!(
        p <= MAX_CONFIG_FILE * 4 + 4096,
        "parsing allocated {p} bytes"
    );
    if data.len() > MAX_CONFIG_FILE {
        assert!(parsed.is_err());
    }
    let Ok(c) = parsed else {
        return;
    };
    let json = c.to_json();
    let again = VolumeConfig::from_json(json.as_bytes()).expect("own JSON parses");
    assert_eq!(again, c);
    assert_eq!(again.to_json(), json);

    let key = DataKey::from_slice(&[5; 32]).unwrap();
    let mut sealed = c.clone();
    sealed.seal(&key).expect("a valid config seals");
    if sealed.mac != c.mac {
        assert!(c.verify(&key).is_err(), "a foreign MAC verified");
    }
    let back = VolumeConfig::from_json(sealed.to_json().as_bytes()).unwrap();
    back.verify(&key).expect("sealed config verifies");
    let mut changed = back.clone();
    changed.key_arn.push('x');
    assert!(changed.verify(&key).is_err(), "changed ARN verified");
});
