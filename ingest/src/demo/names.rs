//! Plausible Russian names for the demo: staff, client organisations, events, and taxpayer
//! numbers (INN) with a correct check digit.

use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

#[rustfmt::skip]
const MALE: [&str; 32] = [
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Василий", "Виктор", "Владимир",
    "Владислав", "Дмитрий", "Евгений", "Егор", "Иван", "Игорь", "Илья", "Кирилл", "Константин", "Максим", "Михаил",
    "Никита", "Николай", "Олег", "Павел", "Роман", "Руслан", "Сергей", "Степан", "Тимур", "Фёдор", "Юрий",
];

#[rustfmt::skip]
const FEMALE: [&str; 29] = [
    "Алёна", "Алина", "Анастасия", "Анна", "Валерия", "Вера", "Виктория", "Галина", "Дарья", "Екатерина", "Елена",
    "Елизавета", "Ирина", "Кристина", "Ксения", "Лариса", "Любовь", "Марина", "Мария", "Надежда", "Наталья",
    "Оксана", "Ольга", "Полина", "Светлана", "София", "Татьяна", "Юлия", "Яна",
];

/// Surnames in the masculine form; all end in -ов/-ев/-ин/-ын, so the feminine adds "а".
#[rustfmt::skip]
const SURNAMES: [&str; 120] = [
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров",
    "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров", "Павлов", "Козлов", "Степанов", "Николаев",
    "Орлов", "Андреев", "Макаров", "Никитин", "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев",
    "Романов", "Воробьёв", "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
    "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев", "Антонов", "Тарасов",
    "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев", "Герасимов", "Богданов", "Осипов", "Сидоров",
    "Матвеев", "Титов", "Марков", "Миронов", "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов",
    "Гаврилов", "Тихонов", "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
    "Мартынов", "Ефимов", "Федотов", "Щербаков", "Назаров", "Калинин", "Исаев", "Чернышёв", "Быков", "Маслов",
    "Родионов", "Коновалов", "Лазарев", "Воронин", "Климов", "Филатов", "Пономарёв", "Голубев", "Кудрявцев",
    "Прохоров", "Наумов", "Потапов", "Журавлёв", "Овчинников", "Трофимов", "Леонов", "Соболев", "Ермаков",
    "Колесников", "Гончаров", "Емельянов", "Никифоров", "Грачёв", "Котов", "Гришин", "Ефремов", "Архипов", "Громов",
    "Кириллов", "Малышев",
];

/// A staff member's name.
#[derive(Debug, Clone)]
pub(crate) struct PersonName {
    pub first: &'static str,
    pub last: String,
}

/// A random first and last name with matching gender.
pub(crate) fn person(rng: &mut ChaCha8Rng) -> PersonName {
    let surname = SURNAMES.choose(rng).copied().unwrap_or("Иванов");
    if rng.random_bool(0.55) {
        PersonName { first: FEMALE.choose(rng).copied().unwrap_or("Анна"), last: format!("{surname}а") }
    } else {
        PersonName { first: MALE.choose(rng).copied().unwrap_or("Иван"), last: surname.to_string() }
    }
}

/// Latin transliteration for mail addresses (passport style, lower case).
pub(crate) fn translit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars().flat_map(char::to_lowercase) {
        let t = match ch {
            'а' => "a",
            'б' => "b",
            'в' => "v",
            'г' => "g",
            'д' => "d",
            'е' | 'ё' | 'э' => "e",
            'ж' => "zh",
            'з' => "z",
            'и' => "i",
            'й' => "y",
            'к' => "k",
            'л' => "l",
            'м' => "m",
            'н' => "n",
            'о' => "o",
            'п' => "p",
            'р' => "r",
            'с' => "s",
            'т' => "t",
            'у' => "u",
            'ф' => "f",
            'х' => "kh",
            'ц' => "ts",
            'ч' => "ch",
            'ш' => "sh",
            'щ' => "shch",
            'ъ' | 'ь' => "",
            'ы' => "y",
            'ю' => "yu",
            'я' => "ya",
            c if c.is_ascii_alphanumeric() => {
                out.push(c);
                continue;
            }
            _ => "",
        };
        out.push_str(t);
    }
    out
}

/// Kinds of B2B clients, with the share of each among clients.
pub(crate) const CLIENT_KINDS: [(&str, f64); 5] =
    [("promoter", 0.35), ("venue", 0.2), ("theatre", 0.13), ("sports_club", 0.1), ("agency", 0.22)];

/// Bitrix24 INDUSTRY of a client kind.
pub(crate) fn industry(kind: &str) -> &'static str {
    match kind {
        "sports_club" => "OTHER",
        "agency" => "CONSULTING",
        _ => "ENTERTAINMENT",
    }
}

#[rustfmt::skip]
const PROMO_PREFIX: [&str; 48] = [
    "Арт", "Шоу", "Гранд", "Мега", "Вега", "Альфа", "Сити", "Нева", "Волга", "Урал", "Сибирь", "Байкал", "Амур",
    "Ока", "Дон", "Кама", "Север", "Звезда", "Прайм", "Нота", "Ритм", "Лайв", "Элит", "Форте", "Аккорд", "Сфера",
    "Триумф", "Овация", "Премьер", "Олимп", "Бис", "Глобус", "Атлант", "Вектор", "Квинта", "Мажор", "Октава",
    "Пульс", "Резонанс", "Стерео", "Тоника", "Финал", "Фьюжн", "Хит", "Эра", "Янтарь", "Граница", "Полюс",
];
#[rustfmt::skip]
const PROMO_SUFFIX: [&str; 12] = [
    "Концерт", "Промо", "Шоу", "Ивент", "Продакшн", "Тур", "Фест", "Медиа", "Сервис", "Групп", "Арт", "Лайв",
];
#[rustfmt::skip]
const VENUE_TYPE: [&str; 8] = [
    "Концертный зал", "Клуб", "Дворец культуры", "Арена", "Культурный центр", "Летний театр", "Лофт", "Дом музыки",
];
#[rustfmt::skip]
const VENUE_NAME: [&str; 36] = [
    "Космос", "Октябрь", "Юбилейный", "Россия", "Победа", "Металлург", "Дружба", "Спутник", "Мир", "Горизонт",
    "Рассвет", "Современник", "Маяк", "Восход", "Полёт", "Энергия", "Авангард", "Звёздный", "Центральный",
    "Молодёжный", "Родина", "Салют", "Прогресс", "Заря", "Нефтяник", "Строитель", "Кристалл", "Сокольники",
    "Пушкинский", "Городской", "Атмосфера", "Гараж", "Платформа", "Депо", "Причал", "Вокзал",
];
#[rustfmt::skip]
const THEATRE: [&str; 8] = [
    "Театр драмы", "Театр юного зрителя", "Театр оперы и балета", "Театр кукол", "Театр комедии",
    "Музыкальный театр", "Камерный театр", "Театр-студия",
];
#[rustfmt::skip]
const WRITERS: [&str; 12] = [
    "А. Н. Островского", "А. П. Чехова", "М. Горького", "А. С. Пушкина", "Н. В. Гоголя", "Л. Н. Толстого",
    "М. Ю. Лермонтова", "И. С. Тургенева", "Ф. М. Достоевского", "М. А. Булгакова", "А. В. Вампилова",
    "В. М. Шукшина",
];
#[rustfmt::skip]
const SPORT: [&str; 6] = [
    "Хоккейный клуб", "Футбольный клуб", "Баскетбольный клуб", "Волейбольный клуб", "Гандбольный клуб",
    "Спортивный клуб",
];
#[rustfmt::skip]
const CLUB_NAME: [&str; 20] = [
    "Торпедо", "Динамо", "Локомотив", "Спартак", "Металлург", "Химик", "Трактор", "Сокол", "Буревестник",
    "Нефтяник", "Энергия", "Олимп", "Старт", "Факел", "Ермак", "Витязь", "Северсталь", "Амур", "Сибиряк", "Звезда",
];
#[rustfmt::skip]
const AGENCY: [&str; 5] = [
    "Агентство артистов", "Продюсерский центр", "Букинг-агентство", "Концертное агентство", "Театральное агентство",
];
#[rustfmt::skip]
const AGENCY_NAME: [&str; 30] = [
    "Гармония", "Созвездие", "Лира", "Эхо", "Маэстро", "Камертон", "Серенада", "Каданс", "Интонация", "Бриз",
    "Орфей", "Аполлон", "Муза", "Талант", "Сцена", "Антракт", "Бенефис", "Гастроль", "Дуэт", "Квартет", "Кулисы",
    "Либретто", "Партер", "Премьера", "Рампа", "Соната", "Софит", "Тембр", "Увертюра", "Финита",
];

/// A client's legal name and the short name people type into other systems.
#[derive(Debug, Clone)]
pub(crate) struct ClientName {
    /// As in the CRM: `ООО «Нева-Промо»`.
    pub title: String,
    /// Without the legal form and quotes: `Нева-Промо`.
    pub short: String,
}

/// A client name for `kind` (the caller makes titles unique).
pub(crate) fn client_name(rng: &mut ChaCha8Rng, kind: &str) -> ClientName {
    let pick = |rng: &mut ChaCha8Rng, list: &[&'static str]| list.choose(rng).copied().unwrap_or("Арт");
    let (form, short) = match kind {
        "promoter" => {
            let p = pick(rng, &PROMO_PREFIX);
            let mut s = pick(rng, &PROMO_SUFFIX);
            while s == p {
                s = pick(rng, &PROMO_SUFFIX);
            }
            let name = if rng.random_bool(0.5) { format!("{p}-{s}") } else { format!("{p}{}", s.to_lowercase()) };
            (if rng.random_bool(0.8) { "ООО" } else { "АО" }, name)
        }
        "venue" => (
            if rng.random_bool(0.6) { "ООО" } else { "МАУК" },
            format!("{} {}", pick(rng, &VENUE_TYPE), pick(rng, &VENUE_NAME)),
        ),
        "theatre" => {
            let t = pick(rng, &THEATRE);
            let name = if rng.random_bool(0.5) { format!("{t} им. {}", pick(rng, &WRITERS)) } else { t.to_string() };
            (if rng.random_bool(0.7) { "ГАУК" } else { "МБУК" }, name)
        }
        "sports_club" => (
            if rng.random_bool(0.6) { "АНО" } else { "ООО" },
            format!("{} {}", pick(rng, &SPORT), pick(rng, &CLUB_NAME)),
        ),
        _ => ("ООО", format!("{} {}", pick(rng, &AGENCY), pick(rng, &AGENCY_NAME))),
    };
    ClientName { title: format!("{form} «{short}»"), short }
}

/// Weights of the INN digits 1-9 of a legal entity (the tenth is the check digit).
const INN10_WEIGHTS: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];

/// The check digit of a legal entity's INN from its first nine digits.
pub(crate) fn inn_check_digit(first9: &[u32; 9]) -> u32 {
    let sum: u32 = first9.iter().zip(INN10_WEIGHTS).map(|(d, w)| d * w).sum();
    sum % 11 % 10
}

/// Whether `inn` is a 10-digit legal-entity INN with a correct check digit.
#[cfg(test)]
pub(crate) fn inn_is_valid(inn: &str) -> bool {
    let digits: Vec<u32> = inn.chars().filter_map(|c| c.to_digit(10)).collect();
    if inn.len() != 10 || digits.len() != 10 {
        return false;
    }
    let mut first9 = [0u32; 9];
    first9.copy_from_slice(&digits[..9]);
    inn_check_digit(&first9) == digits[9]
}

/// A legal entity's INN registered in region `region` (first two digits).
pub(crate) fn inn(rng: &mut ChaCha8Rng, region: u8) -> String {
    let mut d = [0u32; 9];
    d[0] = (region / 10) as u32;
    d[1] = (region % 10) as u32;
    // Tax office number within the region: 01..=36.
    let office: u32 = rng.random_range(1..=36);
    d[2] = office / 10;
    d[3] = office % 10;
    for x in d.iter_mut().skip(4) {
        *x = rng.random_range(0..10);
    }
    let check = inn_check_digit(&d);
    let mut s: String = d.iter().filter_map(|x| char::from_digit(*x, 10)).collect();
    s.extend(char::from_digit(check, 10));
    s
}

#[rustfmt::skip]
const EVENT_NAMES: [&str; 30] = [
    "Белые ночи", "Северное сияние", "Ночные огни", "Голос города", "Звёзды джаза", "Весенний бал",
    "Осенний марафон", "Рок над Волгой", "Классика в парке", "Новая волна", "Песни о главном", "Русские сезоны",
    "Время джаза", "Стендап-вечер", "Большой концерт", "Танцы народов мира", "Симфония огня", "Легенды рока",
    "Лебединое озеро", "Щелкунчик", "Вишнёвый сад", "Ревизор", "Горе от ума", "Мастер и Маргарита",
    "Евгений Онегин", "Кармен", "Иллюзион", "Электроника live", "Органные вечера", "Поэты и музыка",
];

/// A deal title: the event the client wants to sell tickets for.
pub(crate) fn deal_title(rng: &mut ChaCha8Rng, kind: &str, city: &str) -> String {
    let name = EVENT_NAMES.choose(rng).copied().unwrap_or("Большой концерт");
    let kinds: &[&str] = match kind {
        "theatre" => &["Спектакль", "Премьера", "Гастроли"],
        "sports_club" => &["Домашние матчи", "Абонемент сезона", "Матч"],
        "venue" => &["Концерт", "Шоу", "Вечеринка"],
        "agency" => &["Гастрольный тур", "Концерт", "Творческий вечер"],
        _ => &["Концерт", "Фестиваль", "Тур", "Шоу"],
    };
    let event = kinds.choose(rng).copied().unwrap_or("Концерт");
    if kind == "sports_club" {
        let rival = CLUB_NAME.choose(rng).copied().unwrap_or("Старт");
        return format!("{event}: {city} — «{rival}»");
    }
    format!("{event} «{name}», {city}")
}

/// Subjects of requests to the marketing department (legacy intake).
#[rustfmt::skip]
pub(crate) const MARKETING_SUBJECTS: [&str; 6] = [
    "Продвижение мероприятия", "Размещение рекламы концерта", "Баннер на главной странице",
    "Рассылка по базе покупателей", "Таргетированная реклама события", "Анонс в социальных сетях",
];

/// Subjects of requests to the content centre (legacy intake).
#[rustfmt::skip]
pub(crate) const CONTENT_SUBJECTS: [&str; 6] = [
    "Публикация события на сайте", "Модерация мероприятия с портала", "Обновление афиши", "Загрузка схемы зала",
    "Перенос даты мероприятия", "Новое событие от организатора",
];

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn check_digit_matches_real_inns() {
        // Public INNs of Sberbank, Yandex and Gazprom.
        for real in ["7707083893", "7736207543", "7736050003"] {
            assert!(inn_is_valid(real), "{real}");
        }
        assert!(!inn_is_valid("7707083894"));
        assert!(!inn_is_valid("770708389"));
    }

    #[test]
    fn generated_inns_are_valid_and_regional() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..1000 {
            let s = inn(&mut rng, 5);
            assert!(s.starts_with("05") && inn_is_valid(&s), "{s}");
        }
    }

    #[test]
    fn translit_is_ascii() {
        assert_eq!(translit("Журавлёва"), "zhuravleva");
        assert_eq!(translit("Щербаков"), "shcherbakov");
    }
}
