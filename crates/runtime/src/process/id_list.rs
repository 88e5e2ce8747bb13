//! The list format of CPUs and memory nodes ("0-3,7"), as a bit mask of 64-bit words.

/// The highest CPU or node number accepted: a bound on the mask's size (runc's).
const MAX_ID: usize = 64 * 1024;

/// Parse "0-3,7" into a mask. Empty elements and spaces around them are allowed (as runc
/// does); an empty list is an empty mask. The error says what is wrong, not where: the
/// caller names the field.
pub(crate) fn parse(list: &str) -> Result<Vec<u64>, String> {
    let mut mask: Vec<u64> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if first > last {
            return Err(format!("range {part:?} runs backwards"));
        }
        if mask.len() <= last / 64 {
            mask.resize(last / 64 + 1, 0);
        }
        for id in first..=last {
            mask[id / 64] |= 1 << (id % 64);
        }
    }
    Ok(mask)
}

fn number(s: &str) -> Result<usize, String> {
    let n: usize = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if n > MAX_ID {
        return Err(format!("{n} is above the limit of {MAX_ID}"));
    }
    Ok(n)
}

/// The ids set in `mask`.
pub(crate) fn ids(mask: &[u64]) -> impl Iterator<Item = usize> + '_ {
    mask.iter().enumerate().flat_map(|(w, bits)| {
        (0..64)
            .filter(move |b| bits & (1u64 << b) != 0)
            .map(move |b| w * 64 + b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges() {
        assert_eq!(parse("0-3,7").expect("ok"), vec![0b1000_1111]);
        assert_eq!(parse(" 1 , ,65").expect("ok"), vec![0b10, 0b10]);
        assert_eq!(parse("").expect("ok"), Vec::<u64>::new());
        assert_eq!(
            ids(&parse("2,64-65").expect("ok")).collect::<Vec<_>>(),
            [2, 64, 65]
        );
        assert!(parse("3-1").expect_err("backwards").contains("backwards"));
        assert!(parse("a").expect_err("letters").contains("not a number"));
        assert!(parse("-1").is_err());
        assert!(parse("70000").expect_err("too big").contains("limit"));
    }
}
