"""The synthetic world's reference data: countries, carriers, providers, campaigns, user agents, texts.

Everything the generator draws from lives here as plain tuples, so the scenario can be read (and
documented in ground_truth.json) without running it. Codes used by the vectorised modules are the
positions in these tuples.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    """A sub-national region with its IANA time zone and share of the country's users."""

    code: str
    timezone: str
    weight: float


@dataclass(frozen=True)
class Carrier:
    """A mobile network operator and its base SMS delivery probability."""

    name: str
    weight: float
    delivery: float


@dataclass(frozen=True)
class Country:
    """A market: users' share, currency, regions, carriers, SMS routing and public IPv4 first octets."""

    code: str
    weight: float
    currency: str
    money_scale: float
    regions: tuple[Region, ...]
    carriers: tuple[Carrier, ...]
    sms_routes: tuple[tuple[str, float], ...]
    ip_first_octets: tuple[int, ...]
    email_domains: tuple[str, ...]


COUNTRIES: tuple[Country, ...] = (
    Country(
        "US", 0.36, "USD", 1.0,
        (
            Region("US-CA", "America/Los_Angeles", 0.30),
            Region("US-NY", "America/New_York", 0.25),
            Region("US-TX", "America/Chicago", 0.22),
            Region("US-IL", "America/Chicago", 0.13),
            Region("US-CO", "America/Denver", 0.10),
        ),
        (Carrier("Verizon", 0.38, 0.978), Carrier("T-Mobile US", 0.34, 0.972), Carrier("AT&T", 0.28, 0.975)),
        (("twilio", 0.8), ("kannel-b", 0.2)),
        (23, 24, 47, 67, 68, 71, 72, 73, 98, 104, 107, 174),
        ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com"),
    ),
    Country(
        "GB", 0.12, "GBP", 0.8,
        (
            Region("GB-ENG", "Europe/London", 0.84),
            Region("GB-SCT", "Europe/London", 0.09),
            Region("GB-WLS", "Europe/London", 0.07),
        ),
        (
            Carrier("EE", 0.32, 0.976),
            Carrier("Vodafone UK", 0.26, 0.970),
            Carrier("O2 UK", 0.27, 0.968),
            Carrier("Three UK", 0.15, 0.955),
        ),
        (("kannel-a", 0.85), ("twilio", 0.15)),
        (2, 5, 31, 51, 81, 82, 86, 90, 109),
        ("gmail.com", "hotmail.co.uk", "outlook.com", "btinternet.com", "icloud.com"),
    ),
    Country(
        "FR", 0.09, "EUR", 0.92,
        (
            Region("FR-IDF", "Europe/Paris", 0.35),
            Region("FR-ARA", "Europe/Paris", 0.25),
            Region("FR-PAC", "Europe/Paris", 0.20),
            Region("FR-NAQ", "Europe/Paris", 0.20),
        ),
        (
            Carrier("Orange", 0.40, 0.980),
            Carrier("SFR", 0.25, 0.965),
            Carrier("Bouygues Telecom", 0.20, 0.968),
            Carrier("Free Mobile", 0.15, 0.950),
        ),
        (("kannel-a", 0.85), ("twilio", 0.15)),
        (2, 31, 37, 78, 80, 82, 86, 90, 92),
        ("gmail.com", "orange.fr", "free.fr", "hotmail.fr", "laposte.net"),
    ),
    Country(
        "DE", 0.10, "EUR", 0.92,
        (
            Region("DE-NW", "Europe/Berlin", 0.50),
            Region("DE-BY", "Europe/Berlin", 0.30),
            Region("DE-BE", "Europe/Berlin", 0.20),
        ),
        (Carrier("Telekom", 0.40, 0.982), Carrier("Vodafone DE", 0.33, 0.972), Carrier("O2 DE", 0.27, 0.960)),
        (("kannel-a", 0.85), ("twilio", 0.15)),
        (2, 5, 31, 37, 46, 77, 79, 84, 87, 91, 93),
        ("gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de"),
    ),
    Country(
        "IN", 0.21, "INR", 83.0,
        (
            Region("IN-MH", "Asia/Kolkata", 0.40),
            Region("IN-KA", "Asia/Kolkata", 0.30),
            Region("IN-DL", "Asia/Kolkata", 0.30),
        ),
        (Carrier("Jio", 0.45, 0.945), Carrier("Airtel", 0.38, 0.950), Carrier("Vi", 0.17, 0.905)),
        (("kannel-b", 0.9), ("twilio", 0.1)),
        (27, 49, 103, 106, 110, 115, 117, 122, 157, 182),
        ("gmail.com", "yahoo.co.in", "rediffmail.com", "outlook.com"),
    ),
    Country(
        "BR", 0.12, "BRL", 5.0,
        (
            Region("BR-SP", "America/Sao_Paulo", 0.50),
            Region("BR-RJ", "America/Sao_Paulo", 0.30),
            Region("BR-AM", "America/Manaus", 0.20),
        ),
        (Carrier("Vivo", 0.38, 0.955), Carrier("Claro BR", 0.33, 0.950), Carrier("TIM BR", 0.29, 0.940)),
        (("kannel-b", 0.9), ("twilio", 0.1)),
        (177, 179, 186, 187, 189, 191, 200, 201),
        ("gmail.com", "hotmail.com", "uol.com.br", "bol.com.br", "yahoo.com.br"),
    ),
)

# Flattened views: one code per region / carrier across all countries.
REGIONS: tuple[Region, ...] = tuple(r for c in COUNTRIES for r in c.regions)
REGION_COUNTRY: tuple[int, ...] = tuple(i for i, c in enumerate(COUNTRIES) for _ in c.regions)
CARRIERS: tuple[Carrier, ...] = tuple(k for c in COUNTRIES for k in c.carriers)
CARRIER_COUNTRY: tuple[int, ...] = tuple(i for i, c in enumerate(COUNTRIES) for _ in c.carriers)
TIMEZONES: tuple[str, ...] = tuple(dict.fromkeys(r.timezone for r in REGIONS))

SEGMENTS: tuple[str, ...] = ("new", "regular", "vip", "lapsed")
SEGMENT_WEIGHTS: tuple[float, ...] = (0.20, 0.55, 0.08, 0.17)
# Human click propensity by segment (multiplies every campaign's base click rate).
SEGMENT_CLICK: tuple[float, ...] = (1.2, 1.0, 1.4, 0.5)
# Consent probabilities per segment: (sms, email, push).
SEGMENT_CONSENT: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.95, 0.70),
    (0.88, 0.93, 0.60),
    (0.95, 0.97, 0.75),
    (0.70, 0.85, 0.30),
)

CHANNELS: tuple[str, ...] = ("sms", "email", "push")
SMS, EMAIL, PUSH = 0, 1, 2
CHANNEL_CLICK: tuple[float, ...] = (1.0, 0.7, 0.8)

PROVIDERS: tuple[str, ...] = ("kannel-a", "kannel-b", "twilio", "sendgrid", "fcm")
KANNEL_A, KANNEL_B, TWILIO, SENDGRID, FCM = range(5)
# Multiplies a carrier's delivery probability per SMS gateway.
PROVIDER_DELIVERY: tuple[float, ...] = (1.0, 0.995, 1.0, 1.0, 1.0)
EMAIL_DELIVERY = 0.975
PUSH_DELIVERY = 0.94

# Local hour-of-day engagement curve (0..23); multiplied by ACTIVE_IN or ACTIVE_OUT of the user's hours.
HOUR_CURVE: tuple[float, ...] = (
    0.15, 0.10, 0.08, 0.08, 0.10, 0.20, 0.45, 0.80, 1.00, 0.95, 0.90, 0.95,
    1.10, 1.05, 0.90, 0.85, 0.90, 1.00, 1.15, 1.25, 1.20, 1.00, 0.70, 0.35,
)
ACTIVE_IN = 1.0
ACTIVE_OUT = 0.35
ACTIVE_START_HOURS: tuple[int, ...] = (6, 7, 8, 9)
ACTIVE_START_WEIGHTS: tuple[float, ...] = (0.15, 0.35, 0.35, 0.15)
ACTIVE_END_HOURS: tuple[int, ...] = (20, 21, 22, 23)
ACTIVE_END_WEIGHTS: tuple[float, ...] = (0.15, 0.30, 0.35, 0.20)


@dataclass(frozen=True)
class Campaign:
    """A campaign: what triggers it, its templates, priority, link landing page and funnel rates."""

    id: str
    trigger: str
    templates: tuple[str, ...]
    priority: int
    page: str
    click: float
    conversion_type: str
    conversion: float
    ucs2_share: float
    sms_segments: tuple[int, int]
    category: str = "transactional"


CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign("parcel_shipped", "a parcel leaves the warehouse (business hours, fewer on weekends)",
             ("parcel_shipped_v1", "parcel_shipped_v2", "parcel_shipped_tracking_v3"),
             6, "/track", 0.22, "pickup", 0.15, 0.05, (1, 1)),
    Campaign("bill_due", "three days before the user's monthly due date, 10:00 local",
             ("bill_due_generic_v1", "bill_due_generic_v2", "bill_due_personalised_v1", "bill_due_personalised_v2"),
             7, "/billing/pay", 0.20, "payment", 0.50, 0.05, (1, 2)),
    Campaign("appointment_confirmation", "24 h before a booked appointment (quick replies 1/2/YES)",
             ("appointment_confirm_v1", "appointment_confirm_quickreply_v2"),
             8, "/appointments/manage", 0.12, "booking", 0.30, 0.05, (1, 2)),
    Campaign("cart_abandonment", "SMS 30 min after a cart is abandoned; email 24 h later only if no human click",
             ("cart_sms_v1", "cart_sms_v2", "cart_email_v1", "cart_email_v2"),
             4, "/cart", 0.10, "purchase", 0.25, 0.10, (1, 2)),
    Campaign("promotions", "weekly blasts on Tue/Thu 11:00 and Sat 18:00 local to a targeted audience",
             ("promo_limited_time_offer_v1", "promo_limited_time_offer_v2",
              "promo_exclusive_privilege_v1", "promo_exclusive_privilege_v2"),
             2, "/offers", 0.05, "purchase", 0.08, 0.25, (1, 3), "promotional"),
)
PARCEL, BILL, APPOINTMENT, CART, PROMO = range(5)
TEMPLATES: tuple[str, ...] = tuple(t for c in CAMPAIGNS for t in c.templates)
TEMPLATE_INDEX: dict[str, int] = {t: i for i, t in enumerate(TEMPLATES)}
# Cart e-mails click less than the SMS that preceded them.
CART_EMAIL_CLICK = 0.06

# Conversion value per conversion type in USD (lognormal: median, sigma); scaled by the country's money_scale.
CONVERSION_VALUE: dict[str, tuple[float, float]] = {
    "pickup": (0.0, 0.0),
    "payment": (65.0, 0.5),
    "booking": (35.0, 0.3),
    "purchase": (55.0, 0.7),
}
ORGANIC_PURCHASE_PER_DAY = 0.002
ORGANIC_SEGMENT: tuple[float, ...] = (1.0, 1.0, 3.0, 0.3)
CART_ORGANIC_PURCHASE = 0.06
LINK_DOMAIN = "nudg.ly"

BOT_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 "
    "Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "TelegramBot (like TwitterBot)",
    "Mozilla/5.0 (compatible; Google-PageRenderer; +https://www.google.com/bot.html)",
    "Twitterbot/1.0",
    "SkypeUriPreview Preview/0.5",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
)
BOT_WEIGHTS: tuple[float, ...] = (0.30, 0.12, 0.25, 0.06, 0.08, 0.07, 0.04, 0.03, 0.05)
# First two octets of the fetchers' networks (Apple/Facebook, Facebook, WhatsApp, AWS, Telegram, Google, ...).
BOT_IP_PREFIXES: tuple[tuple[int, int], ...] = (
    (17, 58), (31, 13), (157, 240), (54, 209), (149, 154), (66, 249), (199, 16), (40, 77), (35, 227),
)
# Case-insensitive substrings that identify every bot user agent above (and none of the human ones).
BOT_TOKENS: tuple[str, ...] = (
    "facebookexternalhit", "facebot", "twitterbot", "whatsapp", "slackbot", "telegrambot",
    "google-pagerenderer", "skypeuripreview", "discordbot",
)
BOT_CLICK_RATE: tuple[float, ...] = (0.06, 0.04, 0.0)  # per delivered message, by channel

HUMAN_USER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.6422.165 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.179 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-A536B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 12; Redmi Note 11) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.6312.118 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0",
)
# Weights per channel: mobile browsers dominate SMS and push, desktops take a share of e-mail.
HUMAN_UA_WEIGHTS: tuple[tuple[float, ...], ...] = (
    (0.22, 0.10, 0.05, 0.15, 0.16, 0.14, 0.12, 0.03, 0.02, 0.01),
    (0.12, 0.06, 0.03, 0.08, 0.09, 0.08, 0.06, 0.25, 0.15, 0.08),
    (0.25, 0.10, 0.05, 0.16, 0.16, 0.14, 0.14, 0.0, 0.0, 0.0),
)

# Inbound SMS replies: (keyword, texts). Keyword None = free text (no keyword).
REPLY_KINDS: tuple[tuple[str | None, tuple[str, ...]], ...] = (
    ("STOP", ("STOP", "Stop", "stop", "STOP please", "停止", "退订", "STOP 🛑", "UNSUBSCRIBE")),
    ("HELP", ("HELP", "help", "Help?", "帮助", "HELP 🙏")),
    ("START", ("START", "start")),
    ("YES", ("YES", "Yes", "yes 👍", "是的", "Oui")),
    ("1", ("1", "1 ✅")),
    ("2", ("2",)),
    (None, ("Thanks!", "谢谢 🙏", "收到，谢谢！", "ok 👍", "Can I change the time? 🤔", "Merci 😊", "Danke 👌",
            "obrigado!! 😍", "wrong number", "😂😂", "请问可以改到明天吗？", "Who is this?")),
)
STOP, HELP, START, YES, CHOICE_1, CHOICE_2, FREE = range(7)
# Per delivered SMS: probability of STOP (promotions / others), HELP, START, free text.
REPLY_STOP_PROMO = 0.006
REPLY_STOP_OTHER = 0.0008
REPLY_HELP = 0.0006
REPLY_START = 0.0002
REPLY_FREE = 0.0015
# Appointment confirmations: share answered, then split across 1 / 2 / YES.
REPLY_APPOINTMENT = 0.40
REPLY_APPOINTMENT_SPLIT: tuple[float, float, float] = (0.6, 0.2, 0.2)

FIRST_NAMES: tuple[str, ...] = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david", "emma", "oliver",
    "amelia", "harry", "sophie", "lucas", "chloe", "louis", "manon", "lea", "hugo", "lukas", "anna", "leon",
    "mia", "felix", "hannah", "aarav", "priya", "rohan", "ananya", "vikram", "diya", "arjun", "kavya", "gabriel",
    "ana", "miguel", "julia", "pedro", "beatriz", "rafael", "larissa", "wei", "mei", "li", "yuki", "omar", "fatima",
)
LAST_NAMES: tuple[str, ...] = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "taylor", "wilson", "evans",
    "thomas", "martin", "bernard", "dubois", "durand", "moreau", "muller", "schmidt", "schneider", "fischer",
    "weber", "sharma", "patel", "singh", "kumar", "gupta", "reddy", "silva", "santos", "oliveira", "souza",
    "pereira", "costa", "chen", "wang", "zhang", "nguyen", "kim", "ali",
)
