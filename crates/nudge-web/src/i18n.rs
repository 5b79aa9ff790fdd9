//! The UI's languages: message catalogues in Project Fluent (`locales/{lang}/ui.ftl`),
//! the writing direction, and dates and numbers formatted with ICU4X.
//!
//! - Persian (`fa`) dates are in the Solar Hijri calendar with Persian digits, as
//!   Iranian software shows them.
//! - Hebrew (`he`) dates are Gregorian: Israeli software and everyday use (news, banks,
//!   government forms) write civil dates in the Gregorian calendar, and CLDR's default
//!   calendar for `he` is Gregorian; the Hebrew calendar is for religious dates.
//! - Arabic (`ar`) dates are Gregorian or Hijri (Umm al-Qura) per the workspace
//!   setting `ui_arabic_calendar`, with Arabic-Indic digits (CLDR's default for `ar`).
//!
//! Fluent wraps every placeable in Unicode isolation marks (FSI … PDI), so a contact's
//! name or an event name inside a translated sentence keeps its own direction.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast::Entry;
use icu_calendar::Date;
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::{MD, T, YMD, YMDT};
use icu_decimal::DecimalFormatter;
use icu_decimal::input::Decimal;
use icu_locale::Locale as IcuLocale;
use icu_time::{DateTime, Time};
use nudge_core::Millis;
use std::sync::OnceLock;

/// A language of the UI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Fa,
    Ar,
    He,
}

impl Lang {
    pub const ALL: [Lang; 4] = [Lang::En, Lang::Fa, Lang::Ar, Lang::He];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fa => "fa",
            Lang::Ar => "ar",
            Lang::He => "he",
        }
    }

    /// The language's own name, as the language menu shows it.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Fa => "فارسی",
            Lang::Ar => "العربية",
            Lang::He => "עברית",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// `rtl` for Persian, Arabic and Hebrew.
    pub fn dir(self) -> &'static str {
        match self {
            Lang::En => "ltr",
            Lang::Fa | Lang::Ar | Lang::He => "rtl",
        }
    }

    pub fn is_rtl(self) -> bool {
        self.dir() == "rtl"
    }

    fn source(self) -> &'static str {
        match self {
            Lang::En => include_str!("../locales/en/ui.ftl"),
            Lang::Fa => include_str!("../locales/fa/ui.ftl"),
            Lang::Ar => include_str!("../locales/ar/ui.ftl"),
            Lang::He => include_str!("../locales/he/ui.ftl"),
        }
    }

    /// The locale ICU4X formats with. Arabic asks for Arabic-Indic digits: CLDR's
    /// default for `ar` is now Latin digits (as in the Maghreb), while the Mashriq
    /// and the Gulf write ٠١٢٣; a workspace setting could choose per region later.
    fn icu_tag(self) -> &'static str {
        match self {
            Lang::Ar => "ar-u-nu-arab",
            l => l.code(),
        }
    }

    fn index(self) -> usize {
        Lang::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }
}

/// Which calendar Arabic dates use (a workspace setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArabicCalendar {
    #[default]
    Gregorian,
    Hijri,
}

impl ArabicCalendar {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "gregorian" => Some(Self::Gregorian),
            "hijri" | "islamic" => Some(Self::Hijri),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gregorian => "gregorian",
            Self::Hijri => "hijri",
        }
    }
}

struct Catalogue {
    bundle: FluentBundle<FluentResource>,
}

fn catalogues() -> &'static [Catalogue; 4] {
    static CATALOGUES: OnceLock<[Catalogue; 4]> = OnceLock::new();
    CATALOGUES.get_or_init(|| Lang::ALL.map(load))
}

fn load(lang: Lang) -> Catalogue {
    let resource = FluentResource::try_new(lang.source().to_owned())
        .unwrap_or_else(|(_, errors)| panic!("locales/{}/ui.ftl does not parse: {errors:?}", lang.code()));
    let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("language code");
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    bundle
        .add_resource(resource)
        .unwrap_or_else(|errors| panic!("locales/{}/ui.ftl has duplicate messages: {errors:?}", lang.code()));
    Catalogue { bundle }
}

/// The message ids of a language's catalogue, for the completeness test.
pub fn message_ids(lang: Lang) -> Vec<String> {
    let resource = FluentResource::try_new(lang.source().to_owned()).unwrap_or_else(|(r, _)| r);
    resource
        .entries()
        .filter_map(|e| match e {
            Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

/// Translations and formats for one request: the user's language, the workspace's
/// time zone and Arabic calendar.
#[derive(Clone)]
pub struct Tr {
    pub lang: Lang,
    zone: jiff::tz::TimeZone,
    arabic_calendar: ArabicCalendar,
}

impl Tr {
    pub fn new(lang: Lang, zone: jiff::tz::TimeZone, arabic_calendar: ArabicCalendar) -> Self {
        Self {
            lang,
            zone,
            arabic_calendar,
        }
    }

    pub fn code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn dir(&self) -> &'static str {
        self.lang.dir()
    }

    /// The translation of `id` (English when the language lacks it; the id itself
    /// when no catalogue has it, which the completeness test forbids).
    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    /// The translation of `id` with one argument.
    pub fn arg(&self, id: &str, name: &str, value: impl std::fmt::Display) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), FluentValue::from(value.to_string()));
        self.format(id, Some(&args))
    }

    /// The translation of `id` with several arguments.
    pub fn args(&self, id: &str, args: &[(&str, &dyn std::fmt::Display)]) -> String {
        let mut fluent = FluentArgs::new();
        for (name, value) in args {
            fluent.set(name.to_string(), FluentValue::from(value.to_string()));
        }
        self.format(id, Some(&fluent))
    }

    /// The translation of `id` for a count: `$count` selects the plural form and
    /// `$n` is the count written in the language's digits.
    pub fn count(&self, id: &str, count: impl Int) -> String {
        let count = count.int();
        let mut args = FluentArgs::new();
        args.set("count", FluentValue::from(count as f64));
        args.set("n", FluentValue::from(self.num(count)));
        self.format(id, Some(&args))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        for lang in [self.lang, Lang::En] {
            let bundle = &catalogues()[lang.index()].bundle;
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                return bundle.format_pattern(pattern, args, &mut errors).into_owned();
            }
        }
        id.to_owned()
    }

    fn icu_locale(&self) -> IcuLocale {
        let tag = match (self.lang, self.arabic_calendar) {
            (Lang::Ar, ArabicCalendar::Hijri) => "ar-u-ca-islamic-umalqura-nu-arab",
            (lang, _) => lang.icu_tag(),
        };
        tag.parse().unwrap_or(IcuLocale::UNKNOWN)
    }

    /// An integer in the language's digits with its grouping (`12,345`, `۱۲٬۳۴۵`).
    pub fn num(&self, n: impl Int) -> String {
        decimal_formatter(self.lang).format(&Decimal::from(n.int())).to_string()
    }

    /// A decimal with `decimals` digits after the point.
    pub fn decimal(&self, x: impl std::borrow::Borrow<f64>, decimals: u8) -> String {
        let scaled = (x.borrow() * 10f64.powi(decimals as i32)).round() as i64;
        let mut d = Decimal::from(scaled);
        d.multiply_pow10(-(decimals as i16));
        decimal_formatter(self.lang).format(&d).to_string()
    }

    /// A share (0.25) as a percent with `decimals` digits after the point, in the
    /// language's digits and with its percent sign (`25.0%`, `۲۵٫۰٪`).
    pub fn percent(&self, share: impl std::borrow::Borrow<f64>, decimals: u8) -> String {
        self.arg("percent", "n", self.decimal(share.borrow() * 100.0, decimals))
    }

    /// The time zone dates are shown in (the workspace's).
    pub fn zone(&self) -> &jiff::tz::TimeZone {
        &self.zone
    }

    fn civil(&self, ms: Millis) -> Option<(Date<icu_calendar::Iso>, Time)> {
        let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
        let dt = ts.to_zoned(self.zone.clone()).datetime();
        let date = Date::try_new_iso(dt.year() as i32, dt.month() as u8, dt.day() as u8).ok()?;
        let time = Time::try_new(dt.hour() as u8, dt.minute() as u8, dt.second() as u8, 0).ok()?;
        Some((date, time))
    }

    /// A date in the language's calendar (`Dec 6, 2026`, `۱۵ آذر ۱۴۰۵`).
    pub fn date(&self, ms: Millis) -> String {
        let Some((date, _)) = self.civil(ms) else {
            return ms.to_string();
        };
        match DateTimeFormatter::try_new(self.icu_locale().into(), YMD::medium()) {
            Ok(f) => f.format(&date).to_string(),
            Err(_) => nudge_core::format_millis(ms),
        }
    }

    /// Day and month, for chart axes (`Dec 6`, `۱۵ آذر`).
    pub fn day_month(&self, ms: Millis) -> String {
        let Some((date, _)) = self.civil(ms) else {
            return ms.to_string();
        };
        match DateTimeFormatter::try_new(self.icu_locale().into(), MD::medium()) {
            Ok(f) => f.format(&date).to_string(),
            Err(_) => nudge_core::format_millis(ms),
        }
    }

    /// Hour and minute, for chart axes (`2:00 PM`, `۱۴:۰۰`).
    pub fn hour(&self, ms: Millis) -> String {
        let Some((_, time)) = self.civil(ms) else {
            return ms.to_string();
        };
        match DateTimeFormatter::try_new(self.icu_locale().into(), T::hm()) {
            Ok(f) => f.format(&time).to_string(),
            Err(_) => nudge_core::format_millis(ms),
        }
    }

    /// A date and time (to the second) in the workspace's time zone.
    pub fn datetime(&self, ms: Millis) -> String {
        let Some((date, time)) = self.civil(ms) else {
            return ms.to_string();
        };
        match DateTimeFormatter::try_new(self.icu_locale().into(), YMDT::medium()) {
            Ok(f) => f.format(&DateTime { date, time }).to_string(),
            Err(_) => nudge_core::format_millis(ms),
        }
    }
}

/// A whole number a page shows, by value or by reference (templates hand fields by
/// reference).
pub trait Int {
    fn int(self) -> i64;
}

macro_rules! int {
    ($($t:ty),*) => {$(
        impl Int for $t {
            fn int(self) -> i64 {
                i64::try_from(self).unwrap_or(i64::MAX)
            }
        }
        impl Int for &$t {
            fn int(self) -> i64 {
                i64::try_from(*self).unwrap_or(i64::MAX)
            }
        }
        impl Int for &&$t {
            fn int(self) -> i64 {
                i64::try_from(**self).unwrap_or(i64::MAX)
            }
        }
    )*};
}
int!(i64, u64, i32, u32, usize);

/// ICU4X formatters hold their data in a non-`Sync` cart, so each thread keeps its own.
fn decimal_formatter(lang: Lang) -> DecimalFormatter {
    let locale: IcuLocale = lang.icu_tag().parse().unwrap_or(IcuLocale::UNKNOWN);
    DecimalFormatter::try_new(locale.into(), Default::default()).expect("compiled decimal data")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(lang: Lang) -> Tr {
        Tr::new(lang, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian)
    }

    /// 2026-12-06T12:00:00Z
    const DEC_6: Millis = 1_796_558_400_000;

    #[test]
    fn every_catalogue_has_every_english_message() {
        let english = message_ids(Lang::En);
        assert!(english.len() > 20, "{english:?}");
        for lang in [Lang::Fa, Lang::Ar, Lang::He] {
            let have = message_ids(lang);
            let missing: Vec<_> = english.iter().filter(|id| !have.contains(id)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.code());
            let extra: Vec<_> = have.iter().filter(|id| !english.contains(id)).collect();
            assert!(
                extra.is_empty(),
                "{} has messages English lacks: {extra:?}",
                lang.code()
            );
        }
    }

    #[test]
    fn catalogues_load_and_translate() {
        for lang in Lang::ALL {
            let t = tr(lang);
            assert_ne!(t.get("nav-contacts"), "nav-contacts", "{}", lang.code());
        }
        assert_eq!(tr(Lang::En).get("nav-contacts"), "Contacts");
        assert_eq!(tr(Lang::Fa).get("nav-contacts"), "مخاطبان");
    }

    #[test]
    fn directions() {
        assert_eq!(Lang::En.dir(), "ltr");
        for l in [Lang::Fa, Lang::Ar, Lang::He] {
            assert_eq!(l.dir(), "rtl");
        }
        assert_eq!(Lang::parse("fa-IR"), Some(Lang::Fa));
        assert_eq!(Lang::parse("de"), None);
    }

    #[test]
    fn persian_dates_are_solar_hijri_with_persian_digits() {
        let s = tr(Lang::Fa).date(DEC_6);
        // 6 December 2026 is 15 Azar 1405.
        assert!(s.contains("۱۴۰۵"), "{s}");
        assert!(s.contains("آذر"), "{s}");
        assert!(s.contains("۱۵"), "{s}");
    }

    #[test]
    fn english_and_hebrew_dates_are_gregorian() {
        let en = tr(Lang::En).date(DEC_6);
        assert!(en.contains("2026") && en.contains("Dec"), "{en}");
        let he = tr(Lang::He).date(DEC_6);
        assert!(he.contains("2026") && he.contains("בדצמ"), "{he}");
    }

    #[test]
    fn arabic_dates_follow_the_workspace_calendar() {
        let greg = tr(Lang::Ar).date(DEC_6);
        assert!(greg.contains("٢٠٢٦"), "{greg}");
        let hijri = Tr::new(Lang::Ar, jiff::tz::TimeZone::UTC, ArabicCalendar::Hijri).date(DEC_6);
        // 6 December 2026 falls in Jumada al-Akhirah 1448 AH.
        assert!(hijri.contains("١٤٤٨"), "{hijri}");
    }

    #[test]
    fn numbers_use_native_digits() {
        assert_eq!(tr(Lang::En).num(12345), "12,345");
        assert_eq!(tr(Lang::Fa).num(12345), "۱۲٬۳۴۵");
        assert_eq!(tr(Lang::Ar).num(12345), "١٢٬٣٤٥");
        assert_eq!(tr(Lang::He).num(12345), "12,345");
        assert_eq!(tr(Lang::En).decimal(12.5, 2), "12.50");
        let bare = |s: String| s.replace(['\u{2068}', '\u{2069}'], "");
        assert_eq!(bare(tr(Lang::En).percent(0.125, 1)), "12.5%");
        assert_eq!(bare(tr(Lang::Fa).percent(0.125, 1)), "۱۲٫۵٪");
    }

    #[test]
    fn counts_choose_plural_forms_and_isolate_arguments() {
        let t = tr(Lang::En);
        assert_eq!(
            t.count("contacts-count", 1).replace(['\u{2068}', '\u{2069}'], ""),
            "1 contact"
        );
        assert_eq!(
            t.count("contacts-count", 3).replace(['\u{2068}', '\u{2069}'], ""),
            "3 contacts"
        );
        assert!(
            t.count("contacts-count", 3).contains('\u{2068}'),
            "placeables are isolated"
        );
    }
}
