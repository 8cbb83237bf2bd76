"""Fake PII values for the PII detector's training set: faker values plus the shapes contact centres see (spoken and
spaced digits, ids mixing letters, digits and dashes, every common date format, international phone numbers).

Every function takes a `random.Random` (and a faker where it needs one), so a seed fixes the output. Names and
addresses come from faker's own locale data, never from presidio-evaluator's FakeNameGenerator list, which the
evaluation set (../shared/data/presidio_synth) drew its names from.
"""

from __future__ import annotations

import random
import string

# Latin-script faker locales: names and street lines from many countries, as a contact centre hears them.
LOCALES = ("en_US", "en_GB", "en_AU", "en_IE", "en_IN", "en_NG", "en_KE", "en_CA", "de_DE", "fr_FR", "es_ES", "es_MX",
           "it_IT", "pt_BR", "pt_PT", "nl_NL", "pl_PL", "cs_CZ", "hu_HU", "fi_FI", "sv_SE", "da_DK", "no_NO", "tr_TR",
           "ro_RO", "hr_HR", "sk_SK", "vi_VN", "id_ID", "fil_PH", "yo_NG", "sw", "zu_ZA", "et_EE", "lt_LT")

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh",
             "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
             "nineteenth", "twentieth", "twenty first", "twenty second", "twenty third", "twenty fourth",
             "twenty fifth", "twenty sixth", "twenty seventh", "twenty eighth", "twenty ninth", "thirtieth",
             "thirty first")
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")


def digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(n))


def number_words(n: int) -> str:
    """0-99 in words ("forty two")."""
    if n < 10:
        return _DIGIT_WORDS[n]
    if n < 20:
        return _TEENS[n - 10]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _DIGIT_WORDS[n % 10])


def spoken(rng: random.Random, value: str) -> str:
    """A value as speech-to-text writes it: digits as words ("oh" for 0 sometimes, "double five"), letters spaced,
    dashes as "dash"; other characters dropped."""
    zero = rng.choice(("zero", "oh", "o"))
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c.isdigit():
            word = zero if c == "0" else _DIGIT_WORDS[int(c)]
            if i + 1 < len(value) and value[i + 1] == c and rng.random() < 0.3:
                out.append("double " + word)
                i += 2
                continue
            out.append(word)
        elif c.isalpha():
            out.append(c.lower())
        elif c in "-/" and rng.random() < 0.7:
            out.append("dash" if c == "-" else "slash")
        i += 1
    return " ".join(out)


def spaced(value: str) -> str:
    """Every character of the value's digits and letters separated by a space ("3 1 9 2")."""
    return " ".join(c for c in value if c.isalnum())


def speechify(rng: random.Random, value: str) -> str:
    """Spoken, spaced or as written, for a call turn."""
    r = rng.random()
    return spoken(rng, value) if r < 0.45 else spaced(value) if r < 0.65 else value


def luhn_complete(rng: random.Random, prefix: str, length: int) -> str:
    body = prefix + digits(rng, length - len(prefix) - 1)
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def credit_card(rng: random.Random) -> str:
    prefix, length = rng.choice((("4", 16), ("51", 16), ("55", 16), ("22", 16), ("34", 15), ("37", 15), ("6011", 16),
                                 ("35", 16), ("4", 13)))
    number = luhn_complete(rng, prefix, length)
    style = rng.random()
    if length == 15 and style < 0.6:
        return f"{number[:4]} {number[4:10]} {number[10:]}"
    if length == 16 and style < 0.45:
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    if length == 16 and style < 0.6:
        return "-".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def phone(rng: random.Random, fake) -> str:
    """International and national formats; a third come from faker's own locale formats."""
    shapes = (
        lambda: f"+44 7{digits(rng, 3)} {digits(rng, 6)}", lambda: f"07{digits(rng, 3)} {digits(rng, 6)}",
        lambda: f"+44 (0)20 {digits(rng, 4)} {digits(rng, 4)}", lambda: f"020 {digits(rng, 4)} {digits(rng, 4)}",
        lambda: f"+1 ({digits(rng, 3)}) {digits(rng, 3)}-{digits(rng, 4)}", lambda: f"({digits(rng, 3)}) {digits(rng, 3)}-{digits(rng, 4)}",
        lambda: f"{digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 4)}", lambda: f"+1-{digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 4)}",
        lambda: f"+49 {digits(rng, 3)} {digits(rng, 7)}", lambda: f"+49 (0){digits(rng, 2)} {digits(rng, 6)}",
        lambda: "+33 " + " ".join([str(rng.randint(1, 9))] + [digits(rng, 2) for _ in range(4)]),
        lambda: "0" + str(rng.randint(1, 9)) + " " + " ".join(digits(rng, 2) for _ in range(4)),
        lambda: f"+61 4{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}", lambda: f"04{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}",
        lambda: f"+91 {digits(rng, 5)} {digits(rng, 5)}", lambda: f"+234 {digits(rng, 3)} {digits(rng, 3)} {digits(rng, 4)}",
        lambda: f"+254 7{digits(rng, 2)} {digits(rng, 6)}", lambda: f"+971 5{digits(rng, 1)} {digits(rng, 3)} {digits(rng, 4)}",
        lambda: f"+353 8{digits(rng, 1)} {digits(rng, 3)} {digits(rng, 4)}", lambda: f"+34 6{digits(rng, 2)} {digits(rng, 3)} {digits(rng, 3)}",
        lambda: f"+39 3{digits(rng, 2)} {digits(rng, 7)}", lambda: f"+31 6 {digits(rng, 8)}",
        lambda: f"+{rng.randint(20, 99)} {digits(rng, 3)} {digits(rng, 3)} {digits(rng, 3)}", lambda: digits(rng, 10),
        lambda: f"{digits(rng, 3)}.{digits(rng, 3)}.{digits(rng, 4)}",
    )
    if rng.random() < 0.3:
        return fake.phone_number()
    number = rng.choice(shapes)()
    return number + f" ext. {digits(rng, rng.randint(2, 4))}" if rng.random() < 0.04 else number


def spoken_phone(rng: random.Random, value: str) -> str:
    words = spoken(rng, value.replace("+", ""))
    return ("plus " + words) if value.startswith("+") else words


def email(rng: random.Random, fake, name: str | None = None) -> str:
    if name and rng.random() < 0.6:
        parts = [p.lower() for p in name.split() if p.isalpha()] or ["user"]
        local = rng.choice((".", "_", "", "-")).join(parts[: rng.randint(1, len(parts))])
        if rng.random() < 0.4:
            local += str(rng.randint(1, 99))
        ascii_local = local.encode("ascii", "ignore").decode() or "client"
        return f"{ascii_local}@{fake.free_email_domain() if rng.random() < 0.6 else fake.domain_name()}"
    return fake.email() if rng.random() < 0.7 else fake.company_email()


def spoken_email(rng: random.Random, value: str) -> str:
    local, _, domain = value.partition("@")
    say = lambda s: s.replace(".", " dot ").replace("_", " underscore ").replace("-", " dash ")  # noqa: E731
    return f"{say(local)} at {say(domain)}".replace("  ", " ")


def date_of_birth(rng: random.Random, speech: bool) -> str:
    """A birth date in one of the common written formats, or spoken in a call."""
    year, month, day = rng.randint(1935, 2007), rng.randint(1, 12), rng.randint(1, 28)
    mon = _MONTHS[month - 1]
    if speech and rng.random() < 0.7:
        y = (f"nineteen {number_words(year % 100)}" if year < 2000 else f"two thousand and {number_words(year % 100)}"
             if year > 2000 else "two thousand")
        if year < 2000 and year % 100 < 10:
            y = f"nineteen oh {number_words(year % 100)}"
        if rng.random() < 0.25 and year < 2000:
            y = number_words(year % 100)
        spoken = (f"the {_ORDINALS[day - 1]} of {mon.lower()} {y}", f"{_ORDINALS[day - 1]} {mon.lower()} {y}",
                  f"{mon.lower()} {_ORDINALS[day - 1]} {y}", f"{mon.lower()} the {_ORDINALS[day - 1]} {y}",
                  f"{number_words(day)} {number_words(month)} {y}")
        return rng.choice(spoken)
    yy, suffix = year % 100, {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd"}.get(day, "th")
    forms = (f"{day:02d}/{month:02d}/{year}", f"{day}/{month}/{year}", f"{month:02d}/{day:02d}/{year}",
             f"{month}/{day}/{yy:02d}", f"{day:02d}-{month:02d}-{year}", f"{month:02d}-{day:02d}-{year}",
             f"{day:02d}.{month:02d}.{year}", f"{year}-{month:02d}-{day:02d}", f"{year}/{month:02d}/{day:02d}",
             f"{year}.{month:02d}.{day:02d}", f"{day} {mon} {year}", f"{day} {mon[:3]} {year}",
             f"{day}{suffix} {mon} {year}", f"{day}{suffix} of {mon} {year}", f"{mon} {day}, {year}",
             f"{mon} {day}{suffix}, {year}", f"{mon[:3]} {day} {year}", f"{day:02d}{month:02d}{year}",
             f"{day}-{mon[:3]}-{year}", f"{day:02d}/{month:02d}/{yy:02d}")
    value = rng.choice(forms)
    return value.lower() if speech or rng.random() < 0.1 else value


def iban(rng: random.Random, fake) -> str:
    value = fake.iban()
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.5 else value


def ssn(rng: random.Random) -> str:
    area, group, serial = rng.randint(100, 665), rng.randint(10, 99), rng.randint(1000, 9999)
    sep = rng.choice(("-", "-", " ", ""))
    return f"{area}{sep}{group}{sep}{serial}"


def ipv4(rng: random.Random, fake) -> str:
    return fake.ipv6() if rng.random() < 0.1 else fake.ipv4_public() if rng.random() < 0.7 else fake.ipv4_private()


def _sep(rng: random.Random) -> str:
    return rng.choice(("-", "-", "-", "/", "", " ", "."))


def customer_id(rng: random.Random) -> str:
    s = _sep(rng)
    shapes = (lambda: f"CUST{s}{digits(rng, 3)}{s}{digits(rng, 3)}", lambda: f"C{s}{digits(rng, 7)}",
              lambda: f"{letters(rng, 2)}{s}{digits(rng, 4)}{s}{letters(rng, 2)}", lambda: digits(rng, rng.randint(6, 10)),
              lambda: f"{letters(rng, 3)}{digits(rng, 6)}", lambda: f"{digits(rng, 2)}{s}{digits(rng, 3)}{s}{digits(rng, 3)}",
              lambda: f"MBR{s}{digits(rng, 5)}{s}{letters(rng, 1)}", lambda: f"{letters(rng, 3)}/{rng.randint(2015, 2026)}/{digits(rng, 6)}",
              lambda: f"CID{digits(rng, 8)}", lambda: f"{letters(rng, 1)}{digits(rng, 2)}{letters(rng, 1)}{digits(rng, 5)}")
    return rng.choice(shapes)()


def policy_number(rng: random.Random) -> str:
    s = _sep(rng)
    shapes = (lambda: f"POL{s}{digits(rng, 4)}{s}{digits(rng, 5)}", lambda: f"{letters(rng, 2)}{s}{digits(rng, 5)}{s}{digits(rng, 2)}",
              lambda: f"{rng.choice(('HOME', 'AUTO', 'LIFE', 'TRV', 'MTR'))}/{digits(rng, 2)}/{digits(rng, 6)}",
              lambda: f"{digits(rng, 4)}{s}{digits(rng, 4)}{s}{digits(rng, 2)}", lambda: f"CLM{s}{digits(rng, 4)}{s}{digits(rng, 3)}",
              lambda: f"{letters(rng, 3)}{digits(rng, 7)}", lambda: f"P{digits(rng, 9)}",
              lambda: f"{letters(rng, 1)}{digits(rng, 3)}{s}{letters(rng, 2)}{s}{digits(rng, 4)}")
    return rng.choice(shapes)()


def passport(rng: random.Random) -> str:
    shapes = (lambda: digits(rng, 9), lambda: f"{digits(rng, 3)} {digits(rng, 3)} {digits(rng, 3)}",
              lambda: f"{letters(rng, 1)}{digits(rng, 7)}{letters(rng, 1)}", lambda: f"{letters(rng, 2)}{digits(rng, 7)}",
              lambda: f"{letters(rng, 1)}{digits(rng, 8)}", lambda: f"{letters(rng, 2)} {digits(rng, 7)}",
              lambda: f"{letters(rng, 3)}{digits(rng, 6)}")
    return rng.choice(shapes)()


def driver_license(rng: random.Random) -> str:
    shapes = (lambda: f"{letters(rng, 5)}{digits(rng, 6)}{letters(rng, 2)}{digits(rng, 1)}{letters(rng, 2)}",
              lambda: f"{letters(rng, 1)}{digits(rng, 3)}-{digits(rng, 4)}-{digits(rng, 4)}",
              lambda: f"{letters(rng, 1)}{digits(rng, 7)}", lambda: f"{letters(rng, 1)}{digits(rng, 4)}-{digits(rng, 5)}-{digits(rng, 5)}",
              lambda: f"{digits(rng, 3)}-{digits(rng, 3)}-{digits(rng, 3)}", lambda: digits(rng, rng.randint(8, 12)),
              lambda: f"{digits(rng, 1)}{letters(rng, 1)}{digits(rng, 1)}-{digits(rng, 3)}-{digits(rng, 3)}",
              lambda: f"{letters(rng, 2)}{digits(rng, 6)}")
    return rng.choice(shapes)()


def national_id(rng: random.Random) -> str:
    ni = f"{letters(rng, 2)}{digits(rng, 6)}{rng.choice('ABCD')}"
    shapes = (lambda: ni, lambda: f"{ni[:2]} {ni[2:4]} {ni[4:6]} {ni[6:8]} {ni[8]}",
              lambda: f"{digits(rng, 8)}{letters(rng, 1)}",  # Spanish DNI
              lambda: f"{letters(rng, 6)}{digits(rng, 2)}{letters(rng, 1)}{digits(rng, 2)}{letters(rng, 1)}{digits(rng, 3)}{letters(rng, 1)}",
              lambda: f"{digits(rng, 6)}-{digits(rng, 4)}", lambda: f"{digits(rng, 3)}.{digits(rng, 3)}.{digits(rng, 3)}-{digits(rng, 2)}",
              lambda: f"{digits(rng, 4)} {digits(rng, 4)} {digits(rng, 4)}")  # Aadhaar-like
    return rng.choice(shapes)()


def account_number(rng: random.Random) -> str:
    shapes = (lambda: digits(rng, 8), lambda: f"{digits(rng, 2)}-{digits(rng, 2)}-{digits(rng, 2)}",
              lambda: digits(rng, rng.randint(9, 14)), lambda: f"{digits(rng, 4)} {digits(rng, 4)}",
              lambda: f"{digits(rng, 3)}-{digits(rng, 6)}-{digits(rng, 1)}", lambda: "00" + digits(rng, 8))
    return rng.choice(shapes)()


def order_number(rng: random.Random) -> str:
    s = _sep(rng)
    shapes = (lambda: digits(rng, rng.randint(5, 10)), lambda: f"ORD{s}{digits(rng, 6)}",
              lambda: f"{letters(rng, 2)}{s}{letters(rng, 3)}{s}{digits(rng, 5)}", lambda: f"{digits(rng, 2)}-{digits(rng, 3)}-{digits(rng, 1)}",
              lambda: f"RMA{s}{digits(rng, 5)}", lambda: f"INV{s}{rng.randint(2018, 2026)}{s}{digits(rng, 4)}",
              lambda: f"{digits(rng, 3)}-{digits(rng, 7)}-{digits(rng, 7)}", lambda: f"{letters(rng, 1)}{digits(rng, 8)}")
    return rng.choice(shapes)()


def ticket_number(rng: random.Random) -> str:
    s = _sep(rng)
    shapes = (lambda: f"INC{digits(rng, 7)}", lambda: f"SR{s}{digits(rng, 6)}", lambda: f"TKT{s}{digits(rng, 5)}",
              lambda: digits(rng, rng.randint(4, 8)), lambda: f"CS{s}{digits(rng, 6)}", lambda: f"CASE{s}{digits(rng, 5)}",
              lambda: f"{letters(rng, 3)}{s}{digits(rng, 4)}{s}{letters(rng, 1)}", lambda: f"REQ{digits(rng, 6)}")
    return rng.choice(shapes)()


def nhs_number(rng: random.Random) -> str:
    while True:
        body = digits(rng, 9)
        check = 11 - sum(int(c) * (10 - i) for i, c in enumerate(body)) % 11
        if check == 11:
            check = 0
        if check != 10:
            value = body + str(check)
            return f"{value[:3]} {value[3:6]} {value[6:]}" if rng.random() < 0.6 else value


def street_line(rng: random.Random, fake, speech: bool) -> str:
    """A street line (house number, street, sometimes a flat or unit) in the locale's own order."""
    line = fake.street_address()
    if rng.random() < 0.15:
        line = f"{rng.choice(('Flat', 'Apt', 'Apartment', 'Unit', 'Suite'))} {rng.randint(1, 40)}{rng.choice(('', 'B', ''))}, {line}"
    if speech:
        line = line.lower().replace(",", "")
        if rng.random() < 0.5:
            line = " ".join(number_words(int(w)) if w.isdigit() and int(w) < 100 else w for w in line.split())
    return line


def city_line(rng: random.Random, fake) -> str:
    """A town with a postcode or region, or a country: what follows a street line."""
    r = rng.random()
    if r < 0.35:
        return fake.city()
    if r < 0.6:
        return f"{fake.city()} {fake.postcode()}" if rng.random() < 0.5 else f"{fake.postcode()} {fake.city()}"
    if r < 0.8:
        try:
            return f"{fake.city()}, {fake.state_abbr()} {fake.postcode()}"
        except AttributeError:
            return f"{fake.city()}, {fake.country()}"
    return fake.country()


# Non-Latin scripts a customer may paste a town in (Greek, Cyrillic, Georgian, Armenian, Hebrew).
SCRIPT_LOCALES = ("el_GR", "ru_RU", "uk_UA", "ka_GE", "hy_AM", "he_IL")


def foreign_city(rng: random.Random, fakers: list) -> str:
    """A town written in its own script (one of `fakers`, SCRIPT_LOCALES), sometimes upper case, as pasted."""
    city = rng.choice(fakers).city()
    return city.upper() if rng.random() < 0.4 else city


def person(rng: random.Random, fake) -> str:
    r = rng.random()
    if r < 0.5:
        return f"{fake.first_name()} {fake.last_name()}"
    if r < 0.65:
        return fake.first_name()
    if r < 0.75:
        return f"{fake.first_name()} {rng.choice(string.ascii_uppercase)}. {fake.last_name()}"
    if r < 0.85:
        return f"{fake.first_name()} {fake.last_name()}-{fake.last_name()}"
    if r < 0.92:
        return fake.last_name()
    return fake.name()
