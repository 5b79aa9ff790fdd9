# ממשק הווב של Nudge — עברית

nav-label = ראשי
nav-dashboard = לוח בקרה
nav-contacts = אנשי קשר
nav-settings = הגדרות
language = שפה
language-apply = החלה
sign-out = יציאה
back-to-dashboard = חזרה ללוח הבקרה
next-page = העמוד הבא

role-owner = בעלים
role-marketer = משווק
role-analyst = אנליסט

field-email = כתובת דוא״ל
field-password = סיסמה

sign-in-title = כניסה
sign-in-button = כניסה
sign-in-wrong = כתובת הדוא״ל או הסיסמה שגויות.
sign-in-locked = יותר מדי ניסיונות כניסה כושלים. נסו שוב בעוד { $minutes } דקות.
sign-in-no-users = אין עדיין משתמשים בסביבת העבודה הזו. פתחו את קישור ההגדרה ש־`nudge serve` הדפיס.
setup-title = הגדרת סביבת העבודה
setup-intro = צרו את חשבון הבעלים. הבעלים יוכל להזמין משווקים ואנליסטים בהמשך.
setup-button = יצירת בעלים וכניסה
setup-used = קישור ההגדרה הזה כבר נוצל או הוחלף. הריצו שוב את `nudge serve` לקבלת קישור חדש, או היכנסו.

error-not-found = לא נמצא
error-forbidden = אין הרשאה
error-bad-request = משהו בבקשה שגוי
error-internal = משהו השתבש
error-internal-detail = השרת לא הצליח לבצע זאת. הפרטים ביומן השרת.
error-csrf = הטופס פג תוקף או הגיע מאתר אחר. טענו את הדף מחדש ונסו שוב.
error-no-page = אין דף בכתובת הזו.
error-too-large = הטופס גדול מדי.

dashboard-title = סביבת העבודה שלך
stat-contacts = אנשי קשר
dashboard-live-journeys = מסעות פעילים
dashboard-no-live-journeys = אין מסע פעיל.
dashboard-channels = ערוצים
dashboard-no-channels = לא הוגדר אף ערוץ: אי אפשר לשלוח הודעות.
channel-ok = עונה
channel-down = לא עונה

column-id = מזהה
column-name = שם
column-user-id = מזהה משתמש
column-phone = טלפון
column-created = נוצר
column-last-seen = נראה לאחרונה
column-journey = מסע
column-entered = נכנסו
column-active = פעילים
column-conversions = המרות
column-revenue = הכנסות
column-segment = פלח
column-entered-at = כניסה
column-exited-at = יציאה
column-status = סטטוס
column-step = שלב
column-channel = ערוץ
column-template = תבנית
column-subject = נושא
column-state = מצב
column-role = תפקיד

contacts-title = אנשי קשר
contacts-count = { $count ->
    [one] איש קשר אחד
   *[other] { $n } אנשי קשר
}
contacts-search = חיפוש
contacts-search-placeholder = דוא״ל, מזהה משתמש או טלפון
contacts-trait = מאפיין
contacts-trait-value = שווה ל
contacts-search-button = חיפוש
contacts-none = אין איש קשר מתאים.
contacts-bad-cursor = הקישור לעמוד הזה אינו תקין; מוצג העמוד הראשון.
contact-not-found = אין איש קשר { $id }.

profile-identities = מזהים
profile-alias = כינוי
profile-anonymous-id = מזהה אנונימי
profile-lead-score = ציון ליד
profile-traits = מאפיינים
profile-no-traits = אין עדיין מאפיינים.
profile-subscriptions = מינויים
profile-no-subscriptions = לא נרשמו בחירות מינוי.
subscription-subscribed = רשום
subscription-unsubscribed = הסיר הרשמה
subscription-pending = ממתין לאישור
profile-segments = פלחים
profile-no-segments = אינו באף פלח.
profile-member-now = חבר כעת
profile-runs = מסעות
profile-no-runs = אינו באף מסע.
run-active = פעיל
run-finished = הסתיים ({ $reason })
run-set-aside = הועבר הצידה
profile-messages = הודעות
profile-no-messages = אין עדיין הודעות.
profile-timeline = ציר זמן
profile-no-events = אין עדיין אירועים.
event-no-properties = אין מאפיינים.
event-context = הקשר
timeline-older = אירועים ישנים יותר

users-title = משתמשים
users-you = את/ה
users-change-role = שינוי
users-delete = מחיקה
users-delete-confirm = למחוק את המשתמש הזה? הוא יוצא מכל המקומות.
users-add = הוספת משתמש
users-create = יצירת משתמש
users-bad-role = בחרו בעלים, משווק או אנליסט.

## Segments (list, segment page, builder)

nav-segments = פלחים
segments-title = פלחים
segments-none = עדיין אין פלחים. בנו פלח, או התקינו פלח מוכן מלמטה.
segments-new = פלח חדש
column-size = חברים
column-trend = 30 הימים האחרונים
column-updated = עודכן
segments-administrative = ניהולי
segments-ready-made = פלחים מוכנים
segments-ready-made-intro = פלחים נפוצים של חנות מקוונת, מוכנים לשימוש. התקנה יוצרת פלח רגיל שאפשר לשנות.
segments-install = התקנה
segments-installed = מותקן
segment-not-found = אין פלח { $id }.
segment-definition = הגדרה
segment-size-over-time = גודל לאורך זמן
segment-size-now = { $count ->
    [one] חבר אחד כעת
   *[other] { $n } חברים כעת
}
segment-members = חברים
segment-no-members = אין אנשי קשר בפלח הזה.
segment-edit = עריכה
segment-delete = מחיקה
segment-delete-confirm = למחוק את הפלח? היסטוריית החברות בו תימחק גם היא.
segment-description = תיאור
segment-version = גרסה { $n }
segment-administrative-note = ניהולי: חבריו מוחרגים מכל הפלחים האחרים.
segment-empty-and = כולם
segment-empty-or = אף אחד

builder-new-title = פלח חדש
builder-edit-title = עריכת פלח
builder-name = שם
builder-description = תיאור
builder-administrative = פלח ניהולי (אנשי קשר לבדיקה, עובדים): מוחרג מכל הפלחים האחרים
builder-conditions = תנאים
builder-view-form = טופס
builder-view-json = JSON
builder-json-label = ההגדרה כ-JSON (ראו את המדריך לפלחים)
builder-save = שמירת הפלח
builder-cancel = ביטול
builder-update = עדכון
builder-add = הוספה
builder-add-condition = הוספת תנאי
builder-remove = הסרה
builder-negate = שלילה
builder-group = קיבוץ
builder-unwrap = ביטול קיבוץ
builder-remove-not = הסרת „לא”
builder-add-filter = הוספת מסנן מאפיין
builder-remove-filter = הסרת המסנן
builder-where = כאשר
builder-not-label = אף אחד מאלה אינו מתקיים:
builder-group-all = כל אלה מתקיימים
builder-group-any = לפחות אחד מאלה מתקיים
builder-problems = כמה תנאים דורשים תיקון; הם מסומנים למטה.
builder-read-only = התפקיד שלך מאפשר לחקור פלחים כאן, אך לא לשמור אותם.
builder-preview = תצוגה מקדימה חיה
builder-preview-count = { $count ->
    [one] איש קשר אחד תואם
   *[other] { $n } אנשי קשר תואמים
}
builder-preview-sample = חלק מהם
builder-preview-incomplete = השלימו את התנאים המסומנים כדי לראות מי תואם.
builder-preview-none = עדיין אין אנשי קשר תואמים.
builder-error-required = יש למלא שדה זה.
builder-error-choose = יש לבחור אחת מהאפשרויות.
builder-error-number = יש לכתוב מספר, כמו 12 או 12.5.
builder-error-whole = יש לכתוב מספר שלם, כמו 7.
builder-error-date = יש לכתוב תאריך בצורה 2026-12-31 (או 2026-12-31T18:00:00Z).
builder-error-percent = יש לכתוב מספר שלם בין 0 ל-100.
builder-error-not-one = „לא” מכיל תנאי אחד בדיוק.
builder-error-json = ה-JSON אינו תקין: { $error }

field-trait = תכונה
field-operator = פעולה
field-value = ערך
field-values-hint = א, ב, ג
field-date-hint = 2026-12-31
field-event = אירוע
field-count = פעמים
field-window = מתי
field-days = ימים
field-hours = שעות
field-from = מ-
field-to = עד
field-property = מאפיין האירוע
field-which = איזו פעם
field-function = צבירה
field-channel = ערוץ
field-any-channel = כל ערוץ
field-state = מצב
field-percent = אחוז
field-salt = מלח (רשות)
field-segment = פלח
field-action = פעולה
field-template = מזהה תבנית (רשות)
field-choose = בחירה…

kind-and = כל אלה (וגם)
kind-or = אחד מאלה (או)
kind-not = לא
kind-trait = תכונה
kind-event = ביצע אירוע
kind-event_time = מתי אירוע קרה לאחרונה/לראשונה
kind-aggregate = סכום או ממוצע של מאפיין אירוע
kind-subscription = מינוי
kind-segment = חבר בפלח אחר
kind-message = מעורבות בהודעות
kind-lead_score = ניקוד ליד
kind-random_bucket = נתח אקראי

op-equals = שווה ל-
op-not_equals = אינו שווה ל-
op-greater_than = גדול מ-
op-greater_or_equal = לפחות
op-less_than = קטן מ-
op-less_or_equal = לכל היותר
op-contains = מכיל
op-starts_with = מתחיל ב-
op-exists = קיים
op-not_exists = אינו קיים
op-in = אחד מ-
op-not_in = אף אחד מ-
op-before = לפני
op-after = אחרי
op-within_last_days = ב-… הימים האחרונים
op-within_next_days = ב-… הימים הקרובים
op-anniversary_within_days = יום השנה שלו בתוך … ימים
op-anniversary_this_month = יום השנה שלו החודש

time-within_last_days = ב-… הימים האחרונים
time-not_within_last_days = לפני יותר מ-… ימים
time-within_last_hours = ב-… השעות האחרונות
time-not_within_last_hours = לפני יותר מ-… שעות
time-before = לפני
time-after = אחרי

num-greater_or_equal = ≥
num-greater_than = >
num-equals = =
num-less_or_equal = ≤
num-less_than = <

count-at_least = לפחות
count-at_most = לכל היותר
count-exactly = בדיוק
count-times = פעמים

window-ever = אי פעם
window-last_days = ב-… הימים האחרונים
window-last_hours = ב-… השעות האחרונות
window-between = בין שני תאריכים

which-last = הפעם האחרונה
which-first = הפעם הראשונה

function-sum = סכום
function-avg = ממוצע
function-min = הערך הקטן ביותר
function-max = הערך הגדול ביותר
function-count = מספר האירועים

state-subscribed = רשום
state-unsubscribed = הסיר את הרישום
state-pending = ממתין לאישור
state-unknown = לא נרשמה בחירה

action-received = קיבל
action-delivered = נמסרה
action-opened = פתח
action-clicked = לחץ
action-bounced = הוחזרה
action-failed = נכשלה

summary-event = ביצע
summary-where = כאשר
summary-aggregate-of = של
summary-member-of = חבר בפלח
summary-subscription = בערוץ
summary-message = הודעה
summary-template = תבנית
summary-percent = נתח אקראי של
summary-lead-score = ניקוד ליד
summary-days = ימים
summary-hours = שעות
