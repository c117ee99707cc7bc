"""Checkout.com sandbox magic values (fact sheet sections 12 and 13).

A card's behaviour is read once, when the number arrives, into a ``CardProfile`` that is stored
instead of the number: the sandbox never keeps a full PAN, yet a stored card or a token must still
behave like the test card it came from.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

RESPONSE_SUMMARIES = {
    "10000": "Approved", "10008": "Approved - Honor with ID", "10010": "Partial Value Approved",
    "10100": "Flagged as a potentially risky transaction", "10200": "Deferred capture",
    "20001": "Refer to card issuer", "20002": "Refer to card issuer - Special conditions",
    "20003": "Invalid merchant or service provider", "20005": "Declined - Do Not Honour",
    "20012": "Invalid transaction", "20013": "Invalid value/amount", "20014": "Invalid account number (no such number)",
    "20020": "Invalid response", "20046": "Bank decline", "20051": "Insufficient funds",
    "20054": "Expired card", "20057": "Transaction not permitted to cardholder", "20059": "Suspected fraud",
    "20061": "Activity amount limit exceeded", "20062": "Restricted card", "20063": "Security violation",
    "20068": "Response received too late / Timeout", "20078": "Blocked at first use (card not unblocked)",
    "20087": "Bad track data (invalid CVV and/or expiry)", "20091": "Issuer unavailable or switch inoperative",
    "20096": "System malfunction", "20099": "Other / Unidentified responses", "200N7": "Decline for CVV2 failure",
    "200R1": "Issuer stop payment for this authorization", "200R3": "Issuer stop payment for all authorizations",
    "2005C": "Transaction not supported / blocked by issuer", "2009G": "Blocked by cardholder/contact cardholder",
    "20100": "Invalid expiry date format", "20150": "Card not 3D Secure (3DS) enabled",
    "20151": "Cardholder failed 3DS authentication", "20152": "Initial 3DS transaction not completed within 15 minutes",
    "20153": "3DS system malfunction", "20154": "3DS authentication required", "20179": "Lifecycle",
    "20182": "Policy", "20183": "Security", "30004": "Pick up card (No fraud)", "30015": "No such issuer",
    "30033": "Expired card - Pick up", "30041": "Lost card - Pick up", "30043": "Stolen card - Pick up",
    "30046": "Closed account", "40101": "Risk blocked transaction", "40108": "Risk blocked transaction",
    "41101": "Risk Blocked Transaction", "42101": "Risk Blocked Transaction",
    "43401": "3DS authentication required", "50003": "Balance reservation insufficient funds",
}

APPROVED = "10000"
SUCCESS_CARD = "4242424242424242"   # any Luhn-valid card not listed below is approved; this one is the usual
SOFT_DECLINE_3DS = "20154"
EXPIRED_CARD = "20054"
FAILED_3DS = "20151"
TIMED_OUT_3DS = "20152"
NOT_ENROLLED = "20150"

# Card number → response code of every authorization with that card (section 13.1).
DECLINE_CARDS = {
    "4111111111111129": "20001", "4024007103573027": "20012", "4485381577182090": "20014",
    "4544249167673670": "20051", "4724117215951699": "20054", "4000141680788456": "20054",
    "4659465888705671": "20057", "4151512736305999": "20057", "4897453568485113": "20059",
    "4556294593757189": "20061", "4818924250131070": "20062", "4556253752712245": "20063",
    "4095254802642505": "20068", "4532819413487978": "20078", "4500622868341387": "20154",
    "4734868958733862": "200N7", "4567361325981788": "200R3", "4276038578596818": "2005C",
    "4152812521833588": "2009G", "4024007162185267": "30015", "4941202060999329": "30041",
    "4539253655711767": "30043", "4000148147058142": "20020",
}
# Decline only when money moves: a zero-amount verification succeeds.
VERIFICATION_ONLY_DECLINES = {"4546381219393284": "20051", "4857662623668665": "20062"}

# 3DS behaviour (section 13.3). challenge: the ACS page asks for the password; frictionless: it
# only asks to continue. outcome: what authentication yields whatever the cardholder types.
THREE_DS = {
    "4485040371536584": ("frictionless", "Y"), "5588686116426417": ("frictionless", "Y"),
    "345678901234564": ("frictionless", "Y"),
    "4539628347117863": ("frictionless", "N"), "5309961755464047": ("frictionless", "N"),
    "4275765574319271": ("frictionless", "R"), "5596061690670931": ("frictionless", "R"),
    "4556574722325580": ("frictionless", "A"), "4024007186645015": ("frictionless", "U"),
    "5385308360135181": ("challenge", "Y"), "4010061700000021": ("challenge", "Y"),
    "372688581899681": ("challenge", "Y"),
    "4243754271700719": ("challenge", "N"), "4150561000000019": ("challenge", "R"),
    "4152868552773614": ("challenge", "A"),
}
NOT_ENROLLED_CARDS = {"4484070000035519", "5352151570003404", "3530111333300000", "4532432452900131"}

CHALLENGE_PASSWORD = "Checkout1!"

# Legacy ABC amount triggers (section 13.2), only with providers.checkout.amount_triggers: true.
_AMOUNT_EXACT = {9998: "20068", 4001: "40101", 4008: "40108", 2011: "200R1", 2013: "200R3",
                 6510: "20154", 6520: "20154", 6530: "20154", 6540: "20154"}
_AMOUNT_SUFFIX = {"05": "20005", "12": "20012", "14": "20014", "51": "20051", "54": "20087",
                  "62": "20062", "63": "20063", "33": "30033"}


def amount_trigger(amount: int) -> str | None:
    if amount in _AMOUNT_EXACT:
        return _AMOUNT_EXACT[amount]
    if amount >= 100:
        return _AMOUNT_SUFFIX.get(f"{amount % 100:02d}")
    return None


@dataclass
class CardProfile:
    response_code: str = APPROVED
    verification_only: bool = False
    three_ds_flow: str = "challenge"     # challenge | frictionless
    three_ds_outcome: str = "Y"          # Y authenticated, N not, R rejected, A attempted, U unavailable
    enrolled: bool = True
    card_type: str = "CREDIT"
    card_category: str = "CONSUMER"

    def as_dict(self) -> dict:
        return asdict(self)


def profile_for(number: str) -> CardProfile:
    profile = CardProfile()
    if number in DECLINE_CARDS:
        profile.response_code = DECLINE_CARDS[number]
    elif number in VERIFICATION_ONLY_DECLINES:
        profile.response_code = VERIFICATION_ONLY_DECLINES[number]
        profile.verification_only = True
    if number in THREE_DS:
        profile.three_ds_flow, profile.three_ds_outcome = THREE_DS[number]
    if number in NOT_ENROLLED_CARDS:
        profile.enrolled = False
    if number in ("4659105569051157", "4543474002249996"):
        profile.card_type = "DEBIT"
    if number in ("4000141680788456", "4000148147058142"):
        profile.card_type = "PREPAID"
    return profile


def summary(code: str) -> str:
    return RESPONSE_SUMMARIES.get(code, "Declined")
