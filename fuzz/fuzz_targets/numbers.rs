//! The hub's phone-number normalisation (`switchboard_hub::numbers::normalize`, libphonenumber's
//! data) fed whatever an agent or a CRM could type, under any region code: it never panics, and
//! what it accepts is well formed — `+` and digits within libphonenumber's bounds (a 1–3 digit
//! country code and at most 17 national digits: libphonenumber's metadata, which the hub follows,
//! accepts some German numbers longer than E.164's 15 digits, e.g. `+4933091152333911`), a
//! `tel:` URI that starts with that number, digits-only extensions — and stable: normalising the
//! E.164 form again gives the same number.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchboard_hub::numbers::normalize;

const REGIONS: &[&str] = &["GB", "US", "DE", "FR", "IN", "JP", "BR", "AU", "ZZ", "gb", ""];

fuzz_target!(|data: &[u8]| {
    let Some((&region, rest)) = data.split_first() else {
        return;
    };
    let Ok(input) = std::str::from_utf8(rest) else {
        return;
    };
    let region = REGIONS[region as usize % REGIONS.len()];
    let Ok(number) = normalize(input, region) else {
        return;
    };
    let digits = number.e164.strip_prefix('+').expect("E.164 starts with +");
    assert!(
        digits.len() >= 3 && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()),
        "{input:?} ({region}) gave {:?}",
        number.e164
    );
    assert!(number.tel.starts_with(&format!("tel:{}", number.e164)));
    if let Some(ext) = &number.extension {
        assert!(ext.bytes().all(|b| b.is_ascii_digit()), "extension {ext:?}");
    }
    let again = normalize(&number.e164, region).expect("an accepted number's E.164 form is accepted");
    assert_eq!(again.e164, number.e164, "normalising {input:?} twice");
    let _ = number.display(region);
    let _ = number.last_four();
});
