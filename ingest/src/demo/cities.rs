//! The demo group's fixed org chart: four holdings and the 77 city branches with their real IANA
//! time zones, the codes each system uses for them and their size (sales seats).
//!
//! Seats follow the city's weight (Moscow 30, St Petersburg 20, million-plus cities 5-8, small
//! cities 2), and everything else that scales with a branch (deal share, deal size, plans) is
//! derived from them.

/// The group (the root department in the CRM).
pub(crate) const GROUP_NAME: &str = "ГК «Билетный дом»";

/// Mail domain of the staff (a reserved `.example` domain: the company is fictional).
pub(crate) const MAIL_DOMAIN: &str = "biletdom.example";

/// A holding: `(id, display name)`.
pub(crate) const HOLDINGS: [(&str, &str); 4] = [
    ("central", "Центральный холдинг"),
    ("north-west", "Северо-Западный холдинг"),
    ("volga-ural", "Волго-Уральский холдинг"),
    ("siberia-far-east", "Холдинг «Сибирь и Дальний Восток»"),
];

/// One city branch as the org chart defines it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct City {
    /// Branch id in dealhouse.toml (latin slug).
    pub slug: &'static str,
    /// Holding id.
    pub holding: &'static str,
    /// City name (also the CRM department name).
    pub name: &'static str,
    /// IANA time zone the city really uses.
    pub time_zone: &'static str,
    /// Office code in the legacy intake system.
    pub intake_code: &'static str,
    /// First two digits of local taxpayer numbers (the region code).
    pub region: u8,
    /// Sales seats: managers working at the same time.
    pub seats: u8,
}

const fn city(
    slug: &'static str,
    holding: &'static str,
    name: &'static str,
    time_zone: &'static str,
    intake_code: &'static str,
    region: u8,
    seats: u8,
) -> City {
    City { slug, holding, name, time_zone, intake_code, region, seats }
}

const C: &str = "central";
const NW: &str = "north-west";
const VU: &str = "volga-ural";
const SF: &str = "siberia-far-east";

/// The 77 branches, from Kaliningrad (UTC+2) to Kamchatka (UTC+12).
pub(crate) const CITIES: [City; 77] = [
    city("msk", C, "Москва", "Europe/Moscow", "MSK", 77, 30),
    city("vrn", C, "Воронеж", "Europe/Moscow", "VRN", 36, 5),
    city("yar", C, "Ярославль", "Europe/Moscow", "YAR", 76, 3),
    city("tula", C, "Тула", "Europe/Moscow", "TUL", 71, 3),
    city("rzn", C, "Рязань", "Europe/Moscow", "RZN", 62, 3),
    city("nnov", C, "Нижний Новгород", "Europe/Moscow", "NNV", 52, 6),
    city("krd", C, "Краснодар", "Europe/Moscow", "KRD", 23, 6),
    city("sochi", C, "Сочи", "Europe/Moscow", "SOC", 23, 4),
    city("rnd", C, "Ростов-на-Дону", "Europe/Moscow", "ROV", 61, 6),
    city("blg", C, "Белгород", "Europe/Moscow", "BEL", 31, 3),
    city("kursk", C, "Курск", "Europe/Moscow", "KRS", 46, 2),
    city("lpk", C, "Липецк", "Europe/Moscow", "LIP", 48, 3),
    city("tver", C, "Тверь", "Europe/Moscow", "TVR", 69, 3),
    city("kaluga", C, "Калуга", "Europe/Moscow", "KLG", 40, 2),
    city("vladimir", C, "Владимир", "Europe/Moscow", "VLA", 33, 2),
    city("ivanovo", C, "Иваново", "Europe/Moscow", "IVN", 37, 2),
    city("bryansk", C, "Брянск", "Europe/Moscow", "BRY", 32, 2),
    city("smolensk", C, "Смоленск", "Europe/Moscow", "SML", 67, 2),
    city("orel", C, "Орёл", "Europe/Moscow", "ORL", 57, 2),
    city("tambov", C, "Тамбов", "Europe/Moscow", "TMB", 68, 2),
    city("vgg", C, "Волгоград", "Europe/Volgograd", "VGG", 34, 5),
    city("stavropol", C, "Ставрополь", "Europe/Moscow", "STV", 26, 3),
    city("mkh", C, "Махачкала", "Europe/Moscow", "MKH", 5, 3),
    city("kostroma", C, "Кострома", "Europe/Moscow", "KOS", 44, 2),
    city("spb", NW, "Санкт-Петербург", "Europe/Moscow", "SPB", 78, 20),
    city("kgd", NW, "Калининград", "Europe/Kaliningrad", "KGD", 39, 3),
    city("murmansk", NW, "Мурманск", "Europe/Moscow", "MUR", 51, 2),
    city("arkh", NW, "Архангельск", "Europe/Moscow", "ARH", 29, 2),
    city("ptz", NW, "Петрозаводск", "Europe/Moscow", "PTZ", 10, 2),
    city("vnov", NW, "Великий Новгород", "Europe/Moscow", "VNG", 53, 2),
    city("pskov", NW, "Псков", "Europe/Moscow", "PSK", 60, 2),
    city("vologda", NW, "Вологда", "Europe/Moscow", "VLG", 35, 2),
    city("cher", NW, "Череповец", "Europe/Moscow", "CHR", 35, 2),
    city("syktyvkar", NW, "Сыктывкар", "Europe/Moscow", "SYK", 11, 2),
    city("kzn", VU, "Казань", "Europe/Moscow", "KZN", 16, 7),
    city("chelny", VU, "Набережные Челны", "Europe/Moscow", "NCH", 16, 2),
    city("samara", VU, "Самара", "Europe/Samara", "SMR", 63, 6),
    city("tlt", VU, "Тольятти", "Europe/Samara", "TLT", 63, 3),
    city("izh", VU, "Ижевск", "Europe/Samara", "IZH", 18, 3),
    city("ulyanovsk", VU, "Ульяновск", "Europe/Ulyanovsk", "ULY", 73, 3),
    city("saratov", VU, "Саратов", "Europe/Saratov", "SAR", 64, 4),
    city("penza", VU, "Пенза", "Europe/Moscow", "PNZ", 58, 3),
    city("astrakhan", VU, "Астрахань", "Europe/Astrakhan", "AST", 30, 3),
    city("kirov", VU, "Киров", "Europe/Kirov", "KIR", 43, 3),
    city("cheb", VU, "Чебоксары", "Europe/Moscow", "CHB", 21, 3),
    city("yola", VU, "Йошкар-Ола", "Europe/Moscow", "YOL", 12, 2),
    city("saransk", VU, "Саранск", "Europe/Moscow", "SRN", 13, 2),
    city("ufa", VU, "Уфа", "Asia/Yekaterinburg", "UFA", 2, 5),
    city("perm", VU, "Пермь", "Asia/Yekaterinburg", "PRM", 59, 5),
    city("ekb", VU, "Екатеринбург", "Asia/Yekaterinburg", "EKB", 66, 8),
    city("ntagil", VU, "Нижний Тагил", "Asia/Yekaterinburg", "NTG", 66, 2),
    city("chel", VU, "Челябинск", "Asia/Yekaterinburg", "CHE", 74, 5),
    city("mgn", VU, "Магнитогорск", "Asia/Yekaterinburg", "MGN", 74, 2),
    city("orenburg", VU, "Оренбург", "Asia/Yekaterinburg", "ORB", 56, 3),
    city("tyumen", VU, "Тюмень", "Asia/Yekaterinburg", "TMN", 72, 4),
    city("kurgan", VU, "Курган", "Asia/Yekaterinburg", "KRG", 45, 2),
    city("surgut", VU, "Сургут", "Asia/Yekaterinburg", "SUR", 86, 2),
    city("hmao", VU, "Ханты-Мансийск", "Asia/Yekaterinburg", "HMA", 86, 2),
    city("omsk", SF, "Омск", "Asia/Omsk", "OMS", 55, 5),
    city("nsk", SF, "Новосибирск", "Asia/Novosibirsk", "NSK", 54, 8),
    city("tomsk", SF, "Томск", "Asia/Tomsk", "TOM", 70, 3),
    city("barnaul", SF, "Барнаул", "Asia/Barnaul", "BRN", 22, 3),
    city("kemerovo", SF, "Кемерово", "Asia/Novokuznetsk", "KEM", 42, 3),
    city("nkz", SF, "Новокузнецк", "Asia/Novokuznetsk", "NKZ", 42, 2),
    city("krsk", SF, "Красноярск", "Asia/Krasnoyarsk", "KRK", 24, 6),
    city("norilsk", SF, "Норильск", "Asia/Krasnoyarsk", "NOR", 24, 2),
    city("abakan", SF, "Абакан", "Asia/Krasnoyarsk", "ABK", 19, 2),
    city("irk", SF, "Иркутск", "Asia/Irkutsk", "IRK", 38, 4),
    city("uud", SF, "Улан-Удэ", "Asia/Irkutsk", "UUD", 3, 2),
    city("chita", SF, "Чита", "Asia/Chita", "CHT", 75, 2),
    city("yakutsk", SF, "Якутск", "Asia/Yakutsk", "YKS", 14, 2),
    city("blag", SF, "Благовещенск", "Asia/Yakutsk", "BLA", 28, 2),
    city("khv", SF, "Хабаровск", "Asia/Vladivostok", "KHV", 27, 4),
    city("vvo", SF, "Владивосток", "Asia/Vladivostok", "VVO", 25, 4),
    city("yuzhno", SF, "Южно-Сахалинск", "Asia/Sakhalin", "YSK", 65, 2),
    city("magadan", SF, "Магадан", "Asia/Magadan", "MAG", 49, 2),
    city("pkc", SF, "Петропавловск-Камчатский", "Asia/Kamchatka", "PKC", 41, 2),
];

/// CRM department id of the branch at `index` in [`CITIES`] (the group's root department is 1).
pub(crate) fn department_id(index: usize) -> u32 {
    11 + index as u32
}

/// 1C subdivision code of the branch at `index`.
pub(crate) fn accounting_code(index: usize) -> String {
    format!("ОП-{:03}", index + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn cities_are_unique_and_zones_real() {
        let slugs: BTreeSet<_> = CITIES.iter().map(|c| c.slug).collect();
        let codes: BTreeSet<_> = CITIES.iter().map(|c| c.intake_code).collect();
        let names: BTreeSet<_> = CITIES.iter().map(|c| c.name).collect();
        assert_eq!((slugs.len(), codes.len(), names.len()), (77, 77, 77));
        for c in CITIES {
            assert!(c.time_zone.parse::<chrono_tz::Tz>().is_ok(), "{}", c.time_zone);
            assert!(HOLDINGS.iter().any(|h| h.0 == c.holding), "{}", c.slug);
            assert!(c.slug.chars().all(|ch| ch.is_ascii_lowercase()), "{}", c.slug);
        }
        let seats: u32 = CITIES.iter().map(|c| c.seats as u32).sum();
        assert!((260..=310).contains(&seats), "{seats} seats");
    }
}
