//! Shamir secret sharing over GF(2^8) (SPEC 7.4; HashiCorp Vault's `shamir` package, which sops
//! uses for files with several key groups). Only `combine` is needed to read files.
//!
//! A share is `[p_b(x) for each secret byte b] ++ [x]`: the x coordinate is the last byte.

use zeroize::Zeroizing;

/// Multiplication in GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1, without
/// data-dependent branches or table lookups.
fn mul(a: u8, b: u8) -> u8 {
    let mut acc: u8 = 0;
    let mut a = a;
    let mut b = b;
    for _ in 0..8 {
        acc ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    acc
}

/// Multiplicative inverse (a^254); `inv(0)` is 0.
fn inv(a: u8) -> u8 {
    let mut result = 1u8;
    let mut base = a;
    let mut e = 254u8;
    while e > 0 {
        if e & 1 == 1 {
            result = mul(result, base);
        }
        base = mul(base, base);
        e >>= 1;
    }
    result
}

/// Why shares could not be combined.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ShamirError {
    /// Fewer than two shares.
    TooFew,
    /// Shares of different lengths, or shorter than two bytes.
    Length,
    /// Two shares with the same x coordinate (or x = 0).
    DuplicateX,
}

/// Splits `secret` into `parts` shares (x = 1..=parts, as sops ≥ 3.10) any `threshold` of
/// which recombine; coefficients come from the OS random generator.
pub(crate) fn split(
    secret: &[u8],
    parts: usize,
    threshold: usize,
) -> Result<Vec<Zeroizing<Vec<u8>>>, String> {
    if threshold < 2 {
        return Err("threshold must be at least 2".to_owned());
    }
    if parts < threshold || parts > 255 {
        return Err("parts must be between the threshold and 255".to_owned());
    }
    let mut coeffs = Zeroizing::new(vec![0u8; secret.len() * (threshold - 1)]);
    getrandom::fill(&mut coeffs).map_err(|e| format!("random generator failed: {e}"))?;
    Ok((1..=parts)
        .map(|x| {
            let x = x as u8;
            let mut share: Vec<u8> = secret
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let row = &coeffs[i * (threshold - 1)..(i + 1) * (threshold - 1)];
                    // Horner: b + c1 x + c2 x^2 + ...
                    let hi = row.iter().rev().fold(0u8, |acc, c| mul(acc, x) ^ c);
                    mul(hi, x) ^ b
                })
                .collect();
            share.push(x);
            Zeroizing::new(share)
        })
        .collect())
}

/// Lagrange interpolation at 0 of every byte position (Vault `shamir.Combine`).
pub(crate) fn combine(shares: &[Zeroizing<Vec<u8>>]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFew);
    }
    let len = shares.first().map_or(0, |s| s.len());
    if len < 2 || shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::Length);
    }
    let xs: Vec<u8> = shares
        .iter()
        .map(|s| s.last().copied().unwrap_or(0))
        .collect();
    for (i, x) in xs.iter().enumerate() {
        if *x == 0 || xs.iter().skip(i + 1).any(|y| y == x) {
            return Err(ShamirError::DuplicateX);
        }
    }
    // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_i - x_j); subtraction is XOR.
    let basis: Vec<u8> = xs
        .iter()
        .enumerate()
        .map(|(i, xi)| {
            xs.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(1u8, |acc, (_, xj)| mul(acc, mul(*xj, inv(xi ^ xj))))
        })
        .collect();
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    for (idx, out) in secret.iter_mut().enumerate() {
        for (share, l) in shares.iter().zip(&basis) {
            *out ^= mul(share.get(idx).copied().unwrap_or(0), *l);
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(coeffs: &[u8], x: u8) -> u8 {
        // Horner, highest degree last in `coeffs`.
        coeffs.iter().rev().fold(0u8, |acc, c| mul(acc, x) ^ c)
    }

    /// Splits like Vault (x = 1..=n) with fixed "random" coefficients, for tests.
    fn split(secret: &[u8], n: u8, threshold: usize, seed: u8) -> Vec<Zeroizing<Vec<u8>>> {
        (1..=n)
            .map(|x| {
                let mut share: Vec<u8> = secret
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let mut coeffs = vec![*b];
                        for k in 1..threshold {
                            coeffs.push(seed.wrapping_mul(31).wrapping_add((i * 7 + k) as u8));
                        }
                        eval(&coeffs, x)
                    })
                    .collect();
                share.push(x);
                Zeroizing::new(share)
            })
            .collect()
    }

    #[test]
    fn random_split_recombines() {
        let secret = [42u8; 32];
        let shares = super::split(&secret, 3, 2).unwrap_or_default();
        assert_eq!(shares.len(), 3);
        let got = combine(&shares[1..]).map(|k| k.to_vec());
        assert_eq!(got, Ok(secret.to_vec()));
    }

    #[test]
    fn field_arithmetic() {
        assert_eq!(mul(0x53, 0xca), 0x01);
        assert_eq!(mul(0x57, 0x83), 0xc1);
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1);
        }
        assert_eq!(inv(0), 0);
    }

    #[test]
    fn combine_recovers_the_secret_from_any_threshold_subset() {
        let secret: Vec<u8> = (0..32u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(5))
            .collect();
        let shares = split(&secret, 5, 3, 11);
        for pick in [[0usize, 1, 2], [0, 2, 4], [4, 3, 1]] {
            let subset: Vec<_> = pick.iter().map(|i| shares[*i].clone()).collect();
            assert_eq!(combine(&subset).map(|s| s.to_vec()), Ok(secret.clone()));
        }
        // All five also interpolate the same polynomial.
        assert_eq!(combine(&shares).map(|s| s.to_vec()), Ok(secret.clone()));
        // Two shares of a threshold-3 split give something else.
        assert_ne!(combine(&shares[..2]).map(|s| s.to_vec()), Ok(secret));
    }

    #[test]
    fn bad_share_sets_are_refused() {
        let a = Zeroizing::new(vec![1u8, 2, 1]);
        let b = Zeroizing::new(vec![3u8, 4, 1]);
        let c = Zeroizing::new(vec![3u8, 2]);
        assert_eq!(combine(std::slice::from_ref(&a)), Err(ShamirError::TooFew));
        assert_eq!(combine(&[a.clone(), b]), Err(ShamirError::DuplicateX));
        assert_eq!(combine(&[a, c]), Err(ShamirError::Length));
    }
}
