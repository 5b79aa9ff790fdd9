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
dashboard-period = תקופה
period-24h = 24 שעות
period-7d = 7 ימים
period-30d = 30 ימים
stat-events-per-minute = אירועים בדקה
stat-sent = הודעות שנשלחו
stat-delivered = נמסרו
stat-opened = נפתחו
stat-clicked = הקליקו
stat-conversions = המרות
stat-revenue = הכנסות
dashboard-rate = { $percent }% מהנשלחות
chart-messages-sent = הודעות שנשלחו
chart-revenue = הכנסות ביעדי מסעות
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
