//! The fork answers exactly as whatlang 0.18.0 does — language, script, confidence and
//! reliability — on random text of every script it knows, on text mixing them, and on every
//! file of the generated corpus. Upstream is the reference, run in the same process.

use proptest::prelude::*;

fn same(text: &str) {
    let ours = whatlang_fast::detect(text);
    let theirs = whatlang::detect(text);
    match (ours, theirs) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            assert_eq!(a.lang().code(), b.lang().code(), "language of {text:?}");
            assert_eq!(a.script().name(), b.script().name(), "script of {text:?}");
            assert_eq!(
                a.confidence().to_bits(),
                b.confidence().to_bits(),
                "confidence of {text:?}"
            );
            assert_eq!(a.is_reliable(), b.is_reliable(), "reliability of {text:?}");
        }
        (a, b) => panic!("{text:?}: ours {a:?}, whatlang {b:?}"),
    }
}

/// Letters of the scripts whose languages are told apart by trigrams, and some of others.
const ALPHABETS: &[&str] = &[
    "abcdefghijklmnopqrstuvwxyz      éèàçñüöäßøåæœìòùâêîôûëïÿšžčćđłńśźżőű",
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґўђјљњћџ      ",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهويپچژگکیۀےٹڈڑںھ      ",
    "अआइईउऊएऐओऔकखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह़ािीुूेैोौ्      ",
    "אבגדהוזחטיכלמנסעפצקרשתךםןףץ      ",
    "αβγδεζηθικλμνξοπρστυφχψω      ",
    "你好世界中文日本語ひらがなカタカナ한국어      ",
];

fn text_in(alphabet: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = ALPHABETS[alphabet].chars().collect();
    proptest::collection::vec(proptest::sample::select(chars), 0..400)
        .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_text_of_one_script(text in (0..ALPHABETS.len()).prop_flat_map(text_in)) {
        same(&text);
    }

    #[test]
    fn random_text_mixing_scripts(parts in proptest::collection::vec((0..ALPHABETS.len()).prop_flat_map(text_in), 1..4)) {
        same(&parts.concat());
    }

    #[test]
    fn any_text_at_all(text in ".{0,300}") {
        same(&text);
    }
}

#[test]
fn real_sentences() {
    for s in [
        "The quick brown fox jumps over the lazy dog near the harbour at dawn.",
        "El envío llegará al puerto de Valencia el martes por la noche.",
        "Доставка прибуде до порту в Одесі у вівторок увечері.",
        "Доставка прибудет в порт Новороссийска во вторник вечером.",
        "محموله سه‌شنبه شب به بندر عباس می‌رسد.",
        "کھیپ منگل کی رات کراچی کی بندرگاہ پہنچے گی۔",
        "بار به سه شنبه شپه کندهار ته رسیږي.",
        "الشحنة تصل إلى ميناء طرطوس مساء الثلاثاء.",
        "Die Lieferung kommt am Dienstagabend im Hamburger Hafen an.",
        "La livraison arrive au port de Marseille mardi soir.",
        "शिपमेंट मंगलवार रात मुंबई बंदरगाह पहुंचेगा।",
        "המשלוח יגיע לנמל חיפה ביום שלישי בערב.",
    ] {
        same(s);
    }
}

#[test]
fn every_file_of_the_generated_corpus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("corpus");
    bletchley_corpus::generate(
        &out,
        &bletchley_corpus::Options {
            docs: 2000,
            seed: 7,
        },
    )
    .expect("corpus");
    let mut n = 0;
    let mut stack = vec![out];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                same(&text);
                n += 1;
            }
        }
    }
    assert!(n >= 2000, "{n} files compared");
}
