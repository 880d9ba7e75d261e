//! Sentences in six languages, so language detection and search see a
//! multilingual corpus.

use rand::Rng;
use rand::seq::IndexedRandom;

/// Languages the corpus writes, ISO 639-3 as `whatlang` reports them.
pub const LANGS: &[&str] = &["eng", "fra", "deu", "spa", "rus", "ara"];

/// A two-person report: `{a}` and `{b}` are names, `{pa}`/`{pb}` numbers,
/// `{city}` a place.
fn link_templates(lang: &str) -> &'static [&'static str] {
    match lang {
        "fra" => &[
            "Rapport de surveillance. {a} a rencontré {b} près du port de {city}. {a} utilise le numéro {pa} et a appelé {pb} deux fois dans la soirée. La rencontre a duré environ une heure et les deux hommes sont repartis séparément.",
            "Selon la source, {a} et {b} préparent un voyage vers {city}. Le téléphone {pa} a été vu en contact avec {pb}. Il faut vérifier les réservations d'hôtel et les mouvements bancaires de la semaine dernière.",
        ],
        "deu" => &[
            "Observationsbericht. {a} traf sich mit {b} am Bahnhof in {city}. Die Nummer {pa} wurde kurz danach von {pb} angerufen. Beide Personen verließen den Ort getrennt und fuhren mit dem Taxi weiter.",
            "Laut der Quelle planen {a} und {b} ein Treffen in {city}. Das Telefon {pa} stand mehrmals in Kontakt mit {pb}. Die Kontobewegungen der letzten Woche sollten überprüft werden.",
        ],
        "spa" => &[
            "Informe de vigilancia. {a} se reunió con {b} cerca del puerto de {city}. El número {pa} llamó a {pb} dos veces durante la noche. La reunión duró casi una hora y ambos se marcharon por separado.",
            "Según la fuente, {a} y {b} preparan un viaje a {city}. El teléfono {pa} estuvo en contacto con {pb} varias veces. Conviene revisar las reservas de hotel y los movimientos bancarios.",
        ],
        "rus" => &[
            "Отчёт наблюдения. {a} встретился с {b} у вокзала в городе {city}. Номер {pa} позвонил на {pb} дважды за вечер. Встреча длилась около часа, после чего оба ушли по отдельности.",
            "По словам источника, {a} и {b} готовят поездку в {city}. Телефон {pa} несколько раз связывался с {pb}. Необходимо проверить бронирования гостиниц и банковские переводы за прошлую неделю.",
        ],
        "ara" => &[
            "تقرير مراقبة. التقى {a} مع {b} قرب الميناء في مدينة {city}. اتصل الرقم {pa} بالرقم {pb} مرتين خلال المساء. استمر اللقاء نحو ساعة ثم غادر الاثنان كل على حدة.",
            "وفقا للمصدر فإن {a} و {b} يخططان لرحلة إلى {city}. كان الهاتف {pa} على اتصال مع {pb} عدة مرات. يجب التحقق من حجوزات الفنادق والتحويلات المصرفية.",
        ],
        _ => &[
            "Surveillance report. {a} met {b} near the harbour in {city}. The number {pa} called {pb} twice during the evening. The meeting lasted about an hour and both men left separately by taxi.",
            "According to the source, {a} and {b} are planning a trip to {city}. The phone {pa} was in contact with {pb} several times. Hotel bookings and bank transfers from last week should be checked.",
        ],
    }
}

fn card_template(lang: &str) -> &'static str {
    match lang {
        "fra" => {
            "Fiche de contact. {a}, résidant à {city}. Téléphone portable {pa}, adresse électronique {ea}. Dernière mise à jour après un entretien avec la source."
        }
        "deu" => {
            "Kontaktkarte. {a}, wohnhaft in {city}. Mobiltelefon {pa}, E-Mail {ea}. Zuletzt aktualisiert nach einem Gespräch mit der Quelle."
        }
        "spa" => {
            "Ficha de contacto. {a}, residente en {city}. Teléfono móvil {pa}, correo electrónico {ea}. Actualizada tras una entrevista con la fuente."
        }
        "rus" => {
            "Карточка контакта. {a}, проживает в городе {city}. Мобильный телефон {pa}, электронная почта {ea}. Обновлено после беседы с источником."
        }
        "ara" => {
            "بطاقة اتصال. {a} يقيم في {city}. الهاتف المحمول {pa} والبريد الإلكتروني {ea}. تم التحديث بعد مقابلة مع المصدر."
        }
        _ => {
            "Contact card. {a}, resident in {city}. Mobile phone {pa}, e-mail {ea}. Last updated after an interview with the source."
        }
    }
}

fn background_template(lang: &str) -> &'static str {
    match lang {
        "fra" => {
            "Note de synthèse sur la situation à {city}. {a} a signalé des retards au port et une hausse des prix. Contact indiqué : {pa}. Aucun lien avec les enquêtes en cours n'a été établi."
        }
        "deu" => {
            "Lagebericht zur Situation in {city}. {a} meldete Verzögerungen im Hafen und steigende Preise. Angegebener Kontakt: {pa}. Eine Verbindung zu laufenden Ermittlungen wurde nicht festgestellt."
        }
        "spa" => {
            "Nota de situación sobre {city}. {a} informó de retrasos en el puerto y de una subida de precios. Contacto indicado: {pa}. No se ha establecido relación con las investigaciones en curso."
        }
        "rus" => {
            "Справка о положении в городе {city}. {a} сообщил о задержках в порту и росте цен. Указанный контакт: {pa}. Связи с текущими расследованиями не установлено."
        }
        "ara" => {
            "مذكرة عن الوضع في {city}. أفاد {a} بتأخيرات في الميناء وارتفاع في الأسعار. جهة الاتصال المذكورة {pa}. لم تثبت أي صلة بالتحقيقات الجارية."
        }
        _ => {
            "Situation note on {city}. {a} reported delays at the port and rising prices. Contact given: {pa}. No link to current investigations has been established."
        }
    }
}

/// Fills a template.
pub fn fill(t: &str, vars: &[(&str, &str)]) -> String {
    let mut out = t.to_owned();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// A report linking two people.
pub fn link(rng: &mut impl Rng, lang: &str, vars: &[(&str, &str)]) -> String {
    let t = *link_templates(lang).choose(rng).unwrap_or(&"{a} {b}");
    fill(t, vars)
}

/// A contact card for one person.
pub fn card(lang: &str, vars: &[(&str, &str)]) -> String {
    fill(card_template(lang), vars)
}

/// A background note naming one unrelated person.
pub fn background(lang: &str, vars: &[(&str, &str)]) -> String {
    fill(background_template(lang), vars)
}
