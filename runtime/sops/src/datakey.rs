//! Recovering the 32-byte data key from the age-wrapped blobs in the metadata (SPEC 7.3), with
//! Shamir combination for files with several key groups (SPEC 7.4).

use std::io::Read;

use zeroize::Zeroizing;

use crate::cipher::DataKey;
use crate::error::SopsError;
use crate::keys::{DataKeyReport, GroupReport, Identities, KeyAttempt};
use crate::metadata::{KeyGroup, Metadata};
use crate::shamir;

/// A data key is 32 bytes, a Shamir share 33: anything longer in an `enc` blob is refused.
const MAX_WRAPPED_PAYLOAD: u64 = 64;

/// Unwraps one age-armored blob with all identities at once (as sops does).
pub(crate) fn unwrap_age(enc: &str, ids: &Identities) -> Result<Zeroizing<Vec<u8>>, String> {
    let reader = age::armor::ArmoredReader::new(enc.as_bytes());
    let decryptor = age::Decryptor::new(reader).map_err(|e| format!("malformed age blob: {e}"))?;
    let mut out = decryptor.decrypt(ids.as_age()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => "no identity matches this recipient".to_owned(),
        other => format!("age decryption failed: {other}"),
    })?;
    let mut buf = Zeroizing::new(Vec::new());
    (&mut out)
        .take(MAX_WRAPPED_PAYLOAD + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("age payload could not be read: {e}"))?;
    if buf.len() as u64 > MAX_WRAPPED_PAYLOAD {
        return Err("age payload is too long for a data key".to_owned());
    }
    Ok(buf)
}

/// Tries the master keys of one group in sops' decryption order (`SOPS_DECRYPTION_ORDER`,
/// default age first, then PGP, then the others in file order) until one unwraps its part (the data key, or a Shamir
/// share): what happened to each, and the part if one did.
fn unwrap_group(group: &KeyGroup, ids: &Identities) -> (GroupReport, Option<Zeroizing<Vec<u8>>>) {
    let mut attempts = Vec::new();
    let mut part = None;
    let mut order: Vec<_> = group.keys.iter().collect();
    order.sort_by_key(|k| ids.services().decryption_rank(k.kind()));
    for k in order {
        match k.unwrap(ids) {
            Ok(p) => {
                attempts.push(KeyAttempt {
                    recipient: k.label(),
                    failure: None,
                });
                part = Some(p);
                break;
            }
            Err(why) => attempts.push(KeyAttempt {
                recipient: k.label(),
                failure: Some(why),
            }),
        }
    }
    if part.is_none() {
        for other in &group.other {
            attempts.push(KeyAttempt {
                recipient: format!("{other} master key(s)"),
                failure: Some(
                    "this key type is not supported (age, pgp, hc_vault and kms are)".to_owned(),
                ),
            });
        }
    }
    let report = GroupReport {
        attempts,
        success: part.is_some(),
    };
    (report, part)
}

/// Recovers the data key, or reports per recipient why it could not.
pub(crate) fn recover(meta: &Metadata, ids: &Identities, file: &str) -> Result<DataKey, SopsError> {
    let multi = meta.key_groups.len() > 1;
    let threshold = if !multi {
        1
    } else if meta.shamir_threshold == 0 {
        meta.key_groups.len()
    } else {
        meta.shamir_threshold
    };
    let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut groups = Vec::new();
    for group in &meta.key_groups {
        let (report, part) = unwrap_group(group, ids);
        groups.push(report);
        if let Some(p) = part {
            parts.push(p);
        }
    }

    let report = |detail: Option<String>| SopsError::DataKey {
        file: file.to_owned(),
        report: Box::new(DataKeyReport {
            groups: groups.clone(),
            threshold,
            identities: ids.len(),
            searched: ids.searched().to_vec(),
            unsupported: ids.unsupported().to_vec(),
            detail,
        }),
    };

    if meta
        .key_groups
        .iter()
        .all(|g| g.keys.is_empty() && g.other.is_empty())
    {
        return Err(report(Some("the metadata lists no master keys".to_owned())));
    }
    let key = if multi {
        if parts.len() < threshold {
            return Err(report(None));
        }
        shamir::combine(&parts).map_err(|e| {
            report(Some(format!(
                "the recovered key parts do not combine ({e:?})"
            )))
        })?
    } else {
        match parts.pop() {
            Some(k) => k,
            None => return Err(report(None)),
        }
    };
    let mut out = Zeroizing::new([0u8; 32]);
    if key.len() != 32 {
        return Err(report(Some(format!(
            "the recovered data key has {} bytes instead of 32",
            key.len()
        ))));
    }
    out.copy_from_slice(&key);
    Ok(DataKey(out))
}
