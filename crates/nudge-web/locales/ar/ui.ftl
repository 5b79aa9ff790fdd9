# واجهة Nudge على الويب — العربية

nav-label = الرئيسية
nav-dashboard = لوحة التحكم
nav-contacts = جهات الاتصال
nav-journeys = الرحلات
nav-settings = الإعدادات
language = اللغة
language-apply = تطبيق
sign-out = تسجيل الخروج
back-to-dashboard = العودة إلى لوحة التحكم
next-page = الصفحة التالية

role-owner = مالك
role-marketer = مسوّق
role-analyst = محلّل

field-email = عنوان البريد الإلكتروني
field-password = كلمة المرور

sign-in-title = تسجيل الدخول
sign-in-button = دخول
sign-in-wrong = عنوان البريد الإلكتروني أو كلمة المرور غير صحيحة.
sign-in-locked = محاولات دخول فاشلة كثيرة. حاول مرة أخرى بعد { $minutes } دقيقة.
sign-in-no-users = لا يوجد مستخدمون في مساحة العمل هذه بعد. افتح رابط الإعداد الذي طبعه `nudge serve`.
setup-title = إعداد مساحة العمل
setup-intro = أنشئ حساب المالك. يستطيع المالك لاحقًا دعوة المسوّقين والمحلّلين.
setup-button = إنشاء المالك وتسجيل الدخول
setup-used = استُخدم رابط الإعداد هذا أو استُبدل. شغّل `nudge serve` مرة أخرى للحصول على رابط جديد، أو سجّل الدخول.

error-not-found = غير موجود
error-forbidden = غير مسموح
error-bad-request = في الطلب خطأ ما
error-internal = حدث خطأ
error-internal-detail = تعذّر على الخادم تنفيذ ذلك. التفاصيل في سجل الخادم.
error-csrf = انتهت صلاحية هذا النموذج أو جاء من موقع آخر. أعد تحميل الصفحة وحاول مرة أخرى.
error-no-page = لا توجد صفحة بهذا العنوان.
error-too-large = النموذج كبير جدًا.

dashboard-title = مساحة عملك
stat-contacts = جهات الاتصال
dashboard-live-journeys = الرحلات النشطة
dashboard-no-live-journeys = لا توجد رحلة نشطة.
dashboard-channels = القنوات
dashboard-no-channels = لم تُهيّأ أي قناة: لا يمكن إرسال الرسائل.
dashboard-period = الفترة
period-24h = ٢٤ ساعة
period-7d = ٧ أيام
period-30d = ٣٠ يومًا
stat-events-per-minute = أحداث في الدقيقة
stat-sent = الرسائل المرسلة
stat-delivered = المسلَّمة
stat-opened = المفتوحة
stat-clicked = المنقور عليها
stat-conversions = التحويلات
stat-revenue = الإيرادات
dashboard-rate = { $percent }٪ من المرسلة
chart-messages-sent = الرسائل المرسلة
chart-revenue = الإيرادات عند أهداف الرحلات
channel-ok = تستجيب
channel-down = لا تستجيب

column-id = المعرّف
column-name = الاسم
column-user-id = معرّف المستخدم
column-phone = الهاتف
column-created = الإنشاء
column-last-seen = آخر ظهور
column-journey = الرحلة
column-entered = الداخلون
column-active = النشطون
column-conversions = التحويلات
column-revenue = الإيرادات
column-segment = الشريحة
column-entered-at = الدخول
column-exited-at = الخروج
column-status = الحالة
column-step = الخطوة
column-channel = القناة
column-template = القالب
column-subject = الموضوع
column-state = الوضع
column-role = الدور

contacts-title = جهات الاتصال
contacts-count = { $count ->
    [zero] { $n } جهة اتصال
    [one] جهة اتصال واحدة
    [two] جهتا اتصال
    [few] { $n } جهات اتصال
    [many] { $n } جهة اتصال
   *[other] { $n } جهة اتصال
}
contacts-search = بحث
contacts-search-placeholder = البريد الإلكتروني أو معرّف المستخدم أو الهاتف أو الاسم
contacts-search-help = يبحث عن جزء من عنوان البريد الإلكتروني أو معرّف المستخدم أو رقم الهاتف أو الاسم، دون تمييز بين الأحرف الكبيرة والصغيرة؛ وحرف أو حرفان يبحثان عن بداية كلمة.
contacts-trait = السمة
contacts-trait-value = تساوي
contacts-search-button = بحث
contacts-none = لا توجد جهة اتصال مطابقة.
contacts-bad-cursor = رابط هذه الصفحة غير صالح؛ تُعرض الصفحة الأولى.
contact-not-found = لا توجد جهة الاتصال { $id }.

profile-identities = المعرّفات
profile-alias = اسم بديل
profile-anonymous-id = معرّف مجهول
profile-lead-score = نقاط العميل المحتمل
profile-traits = السمات
profile-no-traits = لا سمات بعد.
profile-subscriptions = الاشتراكات
profile-no-subscriptions = لم تُسجَّل اختيارات اشتراك.
subscription-subscribed = مشترك
subscription-unsubscribed = ألغى الاشتراك
subscription-pending = بانتظار التأكيد
profile-segments = الشرائح
profile-no-segments = ليس في أي شريحة.
profile-member-now = عضو الآن
profile-runs = الرحلات
profile-no-runs = ليس في أي رحلة.
run-active = نشطة
run-finished = منتهية ({ $reason })
run-set-aside = موضوعة جانبًا
profile-messages = الرسائل
profile-no-messages = لا رسائل بعد.
profile-timeline = الخط الزمني
profile-no-events = لا أحداث بعد.
event-no-properties = بلا خصائص.
event-context = السياق
timeline-older = أحداث أقدم

users-title = المستخدمون
users-you = أنت
users-change-role = تغيير
users-delete = حذف
users-delete-confirm = حذف هذا المستخدم؟ سيُسجَّل خروجه من كل مكان.
users-add = إضافة مستخدم
users-create = إنشاء المستخدم
users-bad-role = اختر مالكًا أو مسوّقًا أو محلّلًا.

# القوالب
nav-templates = القوالب
templates-title = القوالب
template-new-email = بريد إلكتروني جديد
template-new-sms = رسالة نصية جديدة
template-new-push = إشعار جديد
template-new-webhook = خطاف ويب جديد
templates-none = لا قوالب بعد.
template-topic = موضوع الاشتراك
column-version = الإصدار
column-updated = التحديث
template-transactional-badge = معاملاتي
template-new = قالب جديد
template-version = الإصدار { $version }
template-versions = الإصدارات
template-delete = حذف
template-delete-confirm = حذف هذا القالب وكل إصداراته؟
template-saved = حُفظ كإصدار جديد.
template-description = الوصف
template-transactional = معاملاتي (يُرسل حتى لمن ألغى اشتراكه في التسويق)
template-subject = الموضوع
template-preheader = النص التمهيدي
template-from = المرسل
template-reply-to = الرد إلى
template-body = المحتوى
template-text = نص عادي
template-text-hint = يُنشأ من HTML إذا كان فارغًا
template-message = الرسالة
template-title = العنوان
template-url = الرابط
template-method = الطريقة
template-headers = الترويسات (سطر لكل «الاسم: القيمة»)
template-request-body = جسم الطلب
template-preview-as = معاينة باسم
template-preview-contact = جهة اتصال (بريد أو معرّف مستخدم أو ‎#معرّف)؛ البيانات النموذجية أدناه إذا كان فارغًا
template-sample = بيانات جهة اتصال نموذجية (JSON)
template-save = حفظ
template-preview-button = معاينة
template-preview = المعاينة
template-desktop = سطح المكتب
template-mobile = الجوال
template-diff-previous = التغييرات عن الإصدار السابق
template-compare = قارن
template-with = مع
template-show-diff = اعرض التغييرات
template-not-found = لا يوجد القالب { $id }.
template-no-version = لا يوجد هذا الإصدار.
template-error-line = السطر { $line }: { $message }
template-sample-not-json = بيانات جهة الاتصال النموذجية ليست كائن JSON.
template-sms-chars = { $chars } حرفًا، { $segments } رسالة نصية
template-no-contact = لا توجد جهة الاتصال { $who }.
journeys-title = الرحلات
journeys-none = لا توجد رحلة بعد. أنشئ واحدة، أو ثبّت رحلة جاهزة من الأسفل.
journeys-new = رحلة جديدة
journeys-gallery = رحلات جاهزة
journeys-gallery-intro = تُثبَّت كل واحدة مسودةً مع القوالب التي ترسلها؛ عدّلها ثم انشرها.
journeys-install = تثبيت
journeys-start-from = البدء منها
column-set-aside = المنحّاة
status-draft = مسودة
status-live = منشورة
status-paused = متوقفة مؤقتًا
status-stopped = منتهية
journey-not-found = لا توجد رحلة { $id }.
journey-no-version = ليس للرحلة إصدار { $version }.
journey-version-of = الإصدار { $version }
journey-published-version = المنشور: الإصدار { $version }
journey-never-published = لم تُنشر قط
journey-showing-version = يُعرض الإصدار { $version }.
journey-show-latest = عرض أحدث إصدار
journey-diagram = المخطط
journey-diagram-title = مخطط الرحلة { $name }
journey-live-note = تتحدّث الأرقام كل بضع ثوانٍ.
journey-actions = الحالة
action-publish = نشر
action-publish-version = نشر الإصدار { $version }
action-pause = إيقاف مؤقت
action-resume = استئناف
action-stop = إنهاء
action-stop-confirm = أتنهي هذه الرحلة؟ لن يدخلها أحد بعد الآن وستنتهي المسارات الجارية.
action-publish-confirm = أتنشر هذا الإصدار؟ تبدأ المسارات الجديدة عليه فورًا.
journey-move-runs = مسارات عند خطوات لم تعد في هذا الإصدار
journey-move-runs-intro = اختر أين تكمل المسارات المنتظرة عند كل خطوة في الإصدار الجديد، أو اتركها على إصدارها.
journey-move-stay = تبقى على إصدارها
journey-move-waiting = { $step } ({ $n } منتظرة)
journey-versions = الإصدارات
journey-version-published = منشور
journey-version-view = عرض
journey-dry-run = تشغيل تجريبي
journey-edit = تعديل
journey-edit-intro = التعريف بصيغة JSON كما في الواجهة البرمجية (docs/journeys.md). «تحقّق» يرسم المشكلات على مخطط المسودة؛ والحفظ ينشئ إصدارًا جديدًا يعمل بعد نشره.
field-name = الاسم
field-description = الوصف
field-definition = التعريف
field-start-from = البدء من
start-blank = رحلة فارغة
button-validate = تحقّق
button-save = حفظ
button-create = إنشاء الرحلة
button-show = عرض
check-valid = التعريف صالح.
check-problems = { $count ->
    [zero] لا مشكلات
    [one] مشكلة واحدة
    [two] مشكلتان
    [few] { $n } مشكلات
    [many] { $n } مشكلة
   *[other] { $n } مشكلة
}
check-not-json = هذا ليس JSON: { $error }
check-draft-diagram = المسودة
inspector-title = الخطوة
inspector-choose = اختر خطوة على المخطط، أو من هنا:
inspector-trigger = المُطلِق
inspector-type = النوع
inspector-summary = ما تفعله
inspector-exits = المخارج
inspector-exit-end = ينتهي المسار
inspector-numbers = الأرقام
inspector-settings = الإعدادات
inspector-close = إغلاق
inspector-no-step = ليس في هذا الإصدار خطوة { $step }.
stat-entered = الداخلون
stat-active = النشطون الآن
stat-set-aside = المنحّاة
stat-reached = الواصلون
stat-waiting = المنتظرون الآن
step-sent = المُرسَل
step-opened = المفتوح
step-clicked = النقرات
num-reached = وصل { $n }
num-waiting = ينتظر { $n }
num-sent = أُرسل { $n }
num-opened = فُتح { $n }
num-clicked = نقرات { $n }
num-conversions = تحويلات { $n }
num-revenue = إيرادات { $n }
num-exit = { $exit }: { $n }
num-would-reach = سيصل { $n }
num-would-send = سيُرسَل { $n }
exit-next = التالي
exit-yes = نعم
exit-no = لا
exit-on_event = وقع الحدث
exit-on_timeout = انتهت المهلة
exit-default = وإلا
exit-case = الحالة { $n }
step-type-send = إرسال رسالة
step-type-wait = انتظار
step-type-wait_until = انتظار حتى
step-type-wait_for_event = انتظار حدث
step-type-branch = تفرّع
step-type-multi_branch = تفرّعات
step-type-split = تقسيم
step-type-update_contact = تحديث جهة الاتصال
step-type-webhook = خطاف ويب
step-type-goal = هدف
step-type-exit = خروج
dry-run-title = تشغيل تجريبي لـ { $name }
dry-run-intro = يعيد تشغيل أحدث إصدار على السجل المحفوظ للأيام الأخيرة: من كان سيدخل، وأي خطوات كان سيبلغ، وما الذي كان سيُرسَل. لا يُرسَل شيء ولا يُحفَظ.
dry-run-days = أيام السجل
dry-run-button = إعادة التشغيل
dry-run-bad-days = أدخل عدد أيام من ١ إلى ٣٦٥.
dry-run-contacts = جهات الاتصال المُعاد تشغيلها
dry-run-candidates = المرشحون
dry-run-entered = كانوا سيدخلون
dry-run-messages = الرسائل
dry-run-active = ما زالت جارية في النهاية
dry-run-finished = انتهت ({ $reason })
dry-run-refused = لم يدخلوا ({ $reason })
dry-run-api-trigger = تبدأ هذه الرحلة باستدعاء من الواجهة البرمجية: لا يبدأ السجل المحفوظ أي مسار.

# الرسائل
nav-messages = الرسائل
messages-title = الرسائل
messages-any = الكل
messages-contact-id = معرّف جهة الاتصال
messages-filter = تصفية
messages-none = لا توجد رسالة مطابقة.
messages-recipient = المستلم
messages-bad-filter = يجب أن يكون مرشّح { $field } رقمًا، لا «{ $value }».
message-title = الرسالة { $id }
message-not-found = لا توجد الرسالة { $id }.
message-sent-at = أُرسلت
message-next-attempt = المحاولة التالية
message-attempts = المحاولات
message-error = الخطأ
message-key = مفتاح عدم التكرار
message-events = الحالات والأحداث
message-no-events = لم يُسجَّل أي حدث لهذه الرسالة.
message-content = المحتوى كما أُرسل
message-no-content = لم تُرسل بعد: لا يوجد محتوى مُنشأ.
message-state-queued = في الطابور
message-state-sent = مُرسلة
message-state-delivered = مُسلَّمة
message-state-failed = فاشلة
message-state-bounced = مرتدّة
message-state-suppressed = محجوبة
## Segments (list, segment page, builder)

nav-segments = الشرائح
segments-title = الشرائح
segments-none = لا توجد شرائح بعد. أنشئ واحدة، أو ثبّت شريحة جاهزة من الأسفل.
segments-new = شريحة جديدة
column-size = الأعضاء
column-trend = آخر ٣٠ يومًا
segments-administrative = إدارية
segments-ready-made = شرائح جاهزة
segments-ready-made-intro = شرائح شائعة لمتجر إلكتروني، جاهزة للاستخدام. تثبيت أيّ منها ينشئ شريحة عادية يمكنك تعديلها.
segments-install = تثبيت
segments-installed = مثبّتة
segment-not-found = لا توجد شريحة { $id }.
segment-definition = التعريف
segment-size-over-time = الحجم عبر الزمن
segment-size-now = { $count ->
    [zero] لا أعضاء الآن
    [one] عضو واحد الآن
    [two] عضوان الآن
    [few] { $n } أعضاء الآن
   *[other] { $n } عضوًا الآن
}
segment-members = الأعضاء
segment-no-members = لا توجد جهة اتصال في هذه الشريحة.
segment-edit = تعديل
segment-delete = حذف
segment-delete-confirm = هل تريد حذف هذه الشريحة؟ سيُحذف سجل عضويتها معها.
segment-description = الوصف
segment-version = الإصدار { $n }
segment-administrative-note = إدارية: يُستبعد أعضاؤها من كل الشرائح الأخرى.
segment-empty-and = الجميع
segment-empty-or = لا أحد

builder-new-title = شريحة جديدة
builder-edit-title = تعديل الشريحة
builder-name = الاسم
builder-description = الوصف
builder-administrative = شريحة إدارية (جهات اختبار، موظفون): تُستبعد من كل الشرائح الأخرى
builder-conditions = الشروط
builder-view-form = نموذج
builder-view-json = JSON
builder-json-label = التعريف بصيغة JSON (انظر دليل الشرائح)
builder-save = حفظ الشريحة
builder-cancel = إلغاء
builder-update = تحديث
builder-add = إضافة
builder-add-condition = إضافة شرط
builder-remove = إزالة
builder-negate = نفي
builder-group = تجميع
builder-unwrap = فكّ التجميع
builder-remove-not = إزالة «ليس»
builder-add-filter = إضافة مرشّح خاصية
builder-remove-filter = إزالة المرشّح
builder-where = حيث
builder-not-label = لا يتحقق أيّ مما يلي:
builder-group-all = تتحقق كل هذه الشروط
builder-group-any = يتحقق أحد هذه الشروط
builder-problems = بعض الشروط تحتاج إلى تصحيح؛ وهي مميّزة أدناه.
builder-read-only = يتيح لك دورك استكشاف الشرائح هنا دون حفظها.
builder-preview = معاينة مباشرة
builder-preview-count = { $count ->
    [zero] لا تطابق أي جهة اتصال
    [one] تطابق جهة اتصال واحدة
    [two] تطابق جهتا اتصال
    [few] تطابق { $n } جهات اتصال
   *[other] تطابق { $n } جهة اتصال
}
builder-preview-sample = بعضها
builder-preview-incomplete = أكمل الشروط المميّزة لترى من يطابق.
builder-preview-none = لا تطابق أي جهة اتصال بعد.
builder-error-required = املأ هذا الحقل.
builder-error-choose = اختر أحد الخيارات.
builder-error-number = اكتب عددًا، مثل ١٢ أو ١٢٫٥.
builder-error-whole = اكتب عددًا صحيحًا، مثل ٧.
builder-error-date = اكتب التاريخ بالشكل 2026-12-31 (أو 2026-12-31T18:00:00Z).
builder-error-percent = اكتب عددًا صحيحًا من ٠ إلى ١٠٠.
builder-error-not-one = «ليس» تضم شرطًا واحدًا بالضبط.
builder-error-json = صيغة JSON غير صالحة: { $error }

field-trait = السمة
field-operator = العامل
field-value = القيمة
field-values-hint = أ، ب، ج
field-date-hint = 2026-12-31
field-event = الحدث
field-count = عدد المرات
field-window = متى
field-days = أيام
field-hours = ساعات
field-from = من
field-to = إلى
field-property = خاصية الحدث
field-which = أيّ مرة
field-function = التجميع
field-channel = القناة
field-any-channel = أي قناة
field-state = الحالة
field-percent = النسبة المئوية
field-salt = الملح (اختياري)
field-segment = الشريحة
field-action = الإجراء
field-template = معرّف القالب (اختياري)
field-choose = اختر…

kind-and = كل ما يلي (و)
kind-or = أيّ مما يلي (أو)
kind-not = ليس
kind-trait = سمة
kind-event = قام بحدث
kind-event_time = وقت آخر/أول حدث
kind-aggregate = مجموع أو متوسط خاصية حدث
kind-subscription = الاشتراك
kind-segment = عضو في شريحة أخرى
kind-message = التفاعل مع الرسائل
kind-lead_score = نقاط العميل المحتمل
kind-random_bucket = حصة عشوائية

op-equals = يساوي
op-not_equals = لا يساوي
op-greater_than = أكبر من
op-greater_or_equal = على الأقل
op-less_than = أصغر من
op-less_or_equal = على الأكثر
op-contains = يحتوي على
op-starts_with = يبدأ بـ
op-exists = موجودة
op-not_exists = غير موجودة
op-in = أحد هذه القيم
op-not_in = ليس أيًّا من هذه القيم
op-before = قبل
op-after = بعد
op-within_last_days = خلال آخر … يوم
op-within_next_days = خلال الـ … يوم القادمة
op-anniversary_within_days = ذكراها السنوية خلال … يوم
op-anniversary_this_month = ذكراها السنوية هذا الشهر

time-within_last_days = خلال آخر … يوم
time-not_within_last_days = منذ أكثر من … يوم
time-within_last_hours = خلال آخر … ساعة
time-not_within_last_hours = منذ أكثر من … ساعة
time-before = قبل
time-after = بعد

num-greater_or_equal = ≥
num-greater_than = >
num-equals = =
num-less_or_equal = ≤
num-less_than = <

count-at_least = على الأقل
count-at_most = على الأكثر
count-exactly = بالضبط
count-times = مرات

window-ever = في أي وقت
window-last_days = خلال آخر … يوم
window-last_hours = خلال آخر … ساعة
window-between = بين تاريخين

which-last = آخر مرة
which-first = أول مرة

function-sum = مجموع
function-avg = متوسط
function-min = أصغر قيمة
function-max = أكبر قيمة
function-count = عدد الأحداث

state-subscribed = مشترك
state-unsubscribed = ألغى الاشتراك
state-pending = بانتظار التأكيد
state-unknown = لم يُسجَّل اختيار

action-received = استلم
action-delivered = سُلِّمت
action-opened = فتح
action-clicked = نقر
action-bounced = ارتدّت
action-failed = فشلت

summary-event = قام بـ
summary-where = حيث
summary-aggregate-of = في
summary-member-of = عضو في الشريحة
summary-subscription = على
summary-message = رسالة
summary-template = القالب
summary-percent = حصة عشوائية
summary-lead-score = نقاط العميل المحتمل
summary-days = يوم
summary-hours = ساعة

# الإعدادات
settings-title = الإعدادات
settings-workspace = مساحة العمل
settings-saved = حُفظ.
settings-default-language = اللغة الافتراضية (يستطيع كل مستخدم اختيار لغته)
settings-arabic-calendar = تقويم التواريخ بالعربية
settings-calendar-gregorian = ميلادي
settings-calendar-hijri = هجري (أم القرى)
settings-time-zone = تتبع الرحلات والتواريخ المنطقة الزمنية { $zone } (من إعدادات الخادم، `time_zone`).
settings-save = حفظ
settings-bad-workspace = اختر لغة وتقويمًا من القوائم.
settings-caps = حدود التكرار
settings-caps-help = بحد أقصى هذا العدد من الرسائل التسويقية لكل جهة اتصال عبر كل الرحلات؛ تنتظر الرسالة التي تتجاوز الحد أول وقت مسموح.
settings-cap-max = بحد أقصى
settings-cap-per = لكل
settings-per-day = يوم
settings-per-week = أسبوع
settings-every-channel = كل القنوات
settings-caps-remove = أفرغ رقم الصف لحذفه.
settings-keys = مفاتيح API
settings-key-kind = النوع
settings-key-write = كتابة (عام، للتتبع فقط)
settings-key-admin = إدارة (سري، كامل واجهة الإدارة)
settings-key-prefix = يبدأ بـ
settings-key-revoked = أُبطل
settings-key-revoke = إبطال
settings-key-revoke-confirm = إبطال هذا المفتاح؟ تتوقف البرامج التي تستخدمه فورًا.
settings-key-create = إنشاء مفتاح
settings-key-created = أُنشئ المفتاح { $name }. انسخ سرّه الآن: لن يُعرض إلا هذه المرة.
settings-bad-key-kind = المفتاح إما مفتاح كتابة أو مفتاح إدارة.
settings-channels-help = تُهيّأ القنوات في إعدادات الخادم أو عبر API (PUT /api/v1/channels/{"{"}kind{"}"})؛ انظر docs/messages.md.

# تعديل جهة اتصال
contact-edit-title = تعديل جهة الاتصال
contact-edit-link = تعديل السمات والاشتراكات
contact-edit-help = القيمة التي تُقرأ كـ JSON (42، true، "نص"، [1, 2]) تُخزَّن كذلك؛ وغيرها كنص.
contact-edit-value = القيمة
contact-edit-remove = حذف
contact-edit-new = سمة جديدة
contact-edit-unset = غير محدد
contact-edit-save = حفظ
contact-erase-title = محو جهة الاتصال هذه
contact-erase-help = يحذف جهة الاتصال مع معرّفاتها وأحداثها ورسائلها واشتراكات الإشعارات (GDPR). لا يمكن التراجع.
contact-erase-confirm = محو جهة الاتصال هذه وكل ما يخصها؟ لا يمكن التراجع.
contact-erase-button = محو جهة الاتصال
contacts-erased = مُحيت جهة الاتصال.

# الاستيراد والتصدير
contacts-import-title = استيراد جهات الاتصال
contacts-export = تصدير CSV
contacts-import-help = ملف CSV بسطر عناوين وعمود user_id أو email؛ تصبح الأعمدة الأخرى سمات (انظر docs/api.md). تُستورد كل الصفوف، أو لا شيء إن كان صف خاطئًا، ويُذكر الصف الخاطئ.
contacts-import-file = ملف CSV
contacts-import-button = استيراد
contacts-import-no-file = اختر ملف CSV لاستيراده.
contacts-import-done = استُورد { $rows } صفًا: { $created } جهة اتصال جديدة، { $updated } محدَّثة.
contact-export-title = التصدير (GDPR)
contact-export-button = تنزيل كل ما يخص جهة الاتصال هذه (JSON)
contacts-exact-match = جهة الاتصال التي بريدها الإلكتروني أو معرّف مستخدمها هو عبارة البحث.
contacts-search-containing = كل جهات الاتصال التي تحتوي «{ $term }»
