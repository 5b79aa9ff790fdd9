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
profile-scores = النقاط
profile-score-history = سجل النقاط
profile-no-score-changes = لم تتغير النقاط بعد.
column-score = النقاط
column-value = القيمة
column-stage = المرحلة
column-next-decay = التناقص التالي
column-when = الوقت
column-change = التغيير
column-reason = السبب
score-reason-decay = التناقص مع الوقت
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
field-score = النقاط
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
settings-website = تتبع الموقع
settings-website-intro = يمكن لصفحات هذه الأصول إرسال الأحداث بمفتاح الكتابة عبر مكتبة المتصفح من Segment ‏(analytics.js) التي يقدمها Nudge. أصل واحد في كل سطر: https://shop.example، أو * لأي أصل.
settings-website-origins = الأصول المسموح بها
settings-website-browser-only = للمتصفحات فقط (لا يُقبل المفتاح في نقاط نهاية الخادم)
settings-website-snippet = مقتطف الشيفرة لصفحاتك
settings-website-key-note = ضعه في head كل صفحة. استبدل YOUR_WRITE_KEY بسر مفتاح الكتابة (يظهر مرة واحدة عند إنشاء المفتاح).
settings-key-create = إنشاء مفتاح
settings-key-created = أُنشئ المفتاح { $name }. انسخ سرّه الآن: لن يُعرض إلا هذه المرة.
settings-bad-key-kind = المفتاح إما مفتاح كتابة أو مفتاح إدارة.
settings-channels-help = تهيئة البريد الإلكتروني والرسائل النصية والإرسال التجريبي في الإعدادات › القنوات.

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
contacts-import-help = ملف CSV بسطر عناوين وعمود user_id أو email؛ تصبح الأعمدة الأخرى سمات (traits.الاسم أو الاسم)، وتحدد أعمدة subscription.<القناة> الاشتراكات (انظر docs/api.md). تُستورد الصفوف على دفعات؛ والصف الذي يتعذّر استيراده يُتخطّى ويُذكر برقمه وعموده وسببه.
contacts-import-file = ملف CSV
contacts-import-button = استيراد
contacts-import-no-file = اختر ملف CSV لاستيراده.
contact-export-title = التصدير (GDPR)
contact-export-button = تنزيل كل ما يخص جهة الاتصال هذه (JSON)
contacts-exact-match = جهة الاتصال التي بريدها الإلكتروني أو معرّف مستخدمها هو عبارة البحث.
contacts-search-containing = كل جهات الاتصال التي تحتوي «{ $term }»

# الإعدادات › القنوات
channels-title = القنوات
channels-saved = حُفظ. تُستخدم القناة لكل رسالة من الآن.
channels-intro = كيف يخرج البريد الإلكتروني والرسائل النصية من Nudge. ما تحفظه هنا يُخزَّن في قاعدة البيانات ويتقدّم على إعدادات الخادم حتى تعود إليها. لا تحتاج الإشعارات والـ webhooks إلى تهيئة.
channels-intro-read-only = كيف يخرج البريد الإلكتروني والرسائل النصية من Nudge، وهل تستجيب كل قناة. المالكون وحدهم يستطيعون تغييرها.
channel-kind-email = البريد الإلكتروني
channel-kind-sms = الرسائل النصية
channel-kind-push = الإشعارات
channel-kind-webhook = الـ Webhooks
channel-transport = طريقة الإرسال
channel-transport-smtp = خادم SMTP
channel-transport-twilio = واجهة رسائل نصية متوافقة مع Twilio
channel-transport-capture = الالتقاط: تُحفظ الرسائل ولا يُرسل شيء
channel-capture-note = تُحفظ الرسائل على الخادم ولا يُرسل شيء
channel-source = مصدر التهيئة
channel-source-settings = إعدادات الخادم (عند التشغيل)
channel-source-stored = هذه الصفحة أو الـ API (مخزّنة في قاعدة البيانات)
channel-setting-server = الخادم
channel-setting-from = المرسِل
channel-setting-dkim = سجل مفتاح DKIM
channel-setting-base-url = عنوان الـ API
channel-setting-account = الحساب
channel-setting-signature-header = ترويسة التوقيع
channel-host = خادم SMTP
channel-port = المنفذ
channel-tls = الأمان
channel-tls-starttls = STARTTLS إلزامي (عادةً المنفذ ٥٨٧)
channel-tls-tls = TLS من البداية (عادةً المنفذ ٤٦٥)
channel-tls-opportunistic = STARTTLS إذا عرضه الخادم
channel-tls-none = بلا (مُرحِّل على شبكة خاصة)
channel-user = اسم المستخدم
channel-password = كلمة المرور
channel-secret-set = محدَّدة
channel-secret-keep = محدَّدة — اتركه فارغًا للإبقاء عليها
channel-from-name = اسم المرسِل
channel-from-address = عنوان المرسِل
channel-limits = الحدود
channel-pool = الاتصالات
channel-rate = الحد الأقصى في الثانية
channel-dkim = توقيع DKIM
channel-dkim-help = وقّع كل رسالة بمفتاح نطاقك، وانشر المفتاح العام كسجل TXT في selector._domainkey.domain. اترك المُحدِّد فارغًا لعدم التوقيع.
channel-dkim-selector = المُحدِّد (selector)
channel-dkim-domain = النطاق
channel-dkim-key = المفتاح الخاص (RSA، PEM)
channel-save-help = الحفظ يتحقق من الإعدادات ويخزّنها ويستخدمها فورًا؛ ويظهر أعلاه هل يستجيب الخادم.
channel-save = حفظ
channel-base-url = عنوان الـ API
channel-account = معرّف الحساب (Account SID)
channel-token = رمز المصادقة
channel-sms-from = رقم المرسِل
channel-reset-title = العودة إلى إعدادات الخادم
channel-reset-help = يُنسى ما حُفظ هنا، وتعود القناة إلى ما شُغّل به الخادم.
channel-reset = استخدام إعدادات الخادم
channel-reset-confirm = نسيان هذه التهيئة والعودة إلى إعدادات الخادم؟
channel-push-help = لا تحتاج الإشعارات إلى تهيئة: زوج مفاتيح VAPID الخاص بمساحة العمل أُنشئ عند التشغيل الأول ويُحفظ في قاعدة البيانات. تشترك المتصفحات بهذا المفتاح العام.
channel-vapid-key = مفتاح VAPID العام
channel-webhook-help = تُرسَل قوالب الـ webhook إلى عنوانها الخاص، موقّعةً بسرّ الـ webhook الخاص بمساحة العمل (انظر docs/messages.md).
channel-not-a-whole-number = اكتب عددًا صحيحًا.
channel-bad-port = المنفذ عدد من ١ إلى ٦٥٥٣٥.
channel-required = مطلوب.
channel-not-a-rate = اكتب عدد الرسائل في الثانية، مثل 0.5 أو 20.
channel-not-configurable = لا يُهيّأ هنا إلا البريد الإلكتروني والرسائل النصية.

# الإرسال التجريبي
test-title = إرسال تجريبي
test-help-email = رسالة بريد حقيقية واحدة عبر هذه القناة إلى العنوان الذي تكتبه. ليست رسالة جهة اتصال: لا تظهر في سجل الرسائل ولا تحتاج إلى جهة اتصال.
test-help-sms = رسالة نصية حقيقية واحدة عبر هذه القناة إلى الرقم الذي تكتبه. ليست رسالة جهة اتصال: لا تظهر في سجل الرسائل ولا تحتاج إلى جهة اتصال.
test-to-email = أرسل إلى (عنوان بريد إلكتروني)
test-to-phone = أرسل إلى (رقم هاتف)
test-send = إرسال تجريبي
test-subject = رسالة تجريبية من Nudge
test-body = هذه رسالة تجريبية من Nudge. إن كنت تقرؤها فالقناة تعمل.
test-captured = تم، لكن قناة { $kind } تلتقط الرسائل: لم يخرج شيء من الخادم.
test-accepted = قبِلها { $transport } لـ { $to }.
test-failed-temporary = لم تُرسَل إلى { $to }: لم يقبلها { $transport } الآن (تعذّر الوصول، أو طلب المحاولة لاحقًا).
test-failed-permanent = لم تُرسَل إلى { $to }: رفضها { $transport }.
test-failed-bounce = لم تُرسَل: رفض { $transport } المستلم { $to }.
template-test-help-email = يرسل ما يعرضه المحرر، محفوظًا أو لا، كما يظهر في المعاينة، إلى عنوان واحد. يبدأ الموضوع بـ «[Test]»، ولا تُتتبَّع الروابط.
template-test-help-sms = يرسل ما يعرضه المحرر، محفوظًا أو لا، كما يظهر في المعاينة، إلى رقم هاتف واحد.
template-test-help-webhook = يرسل الطلب الذي يعرضه المحرر، محفوظًا أو لا، كما يظهر في المعاينة، إلى عنوان القالب.
template-test-push = يذهب الإشعار إلى متصفحات جهة اتصال، لا إلى عنوان يمكن كتابته: أرسل القالب إلى جهة اتصال لتجربته.

# مهام استيراد جهات الاتصال
contacts-import-another = استيراد ملف آخر
contacts-import-reading = جارٍ قراءة الملف…
contacts-import-importing = جارٍ الاستيراد…
contacts-import-progress = { $done } من { $total } صفًا
contacts-import-refresh = تحديث
contacts-import-finished = انتهى الاستيراد
contacts-import-stopped = توقف الاستيراد
contacts-import-report = { $rows } صفًا: { $created } جهة اتصال جديدة، { $updated } محدَّثة، { $failed } لم تُستورد.
contacts-import-created = جهة اتصال جديدة
contacts-import-updated = محدَّثة
contacts-import-failed = صفوف لم تُستورد
contacts-import-errors = الصفوف التي لم تُستورد
contacts-import-row = الصف
contacts-import-column = العمود
contacts-import-problem = المشكلة
contacts-import-more-errors = يُعرض أول { $shown } من { $failed } صفًا لم تُستورد؛ والملف المنزَّل يضمها كلها.
contacts-import-errors-csv = تنزيل الصفوف التي لم تُستورد (CSV)
contacts-import-unknown = لا يعرف هذا الخادم استيرادًا كهذا. يُتابَع تقدّم الاستيراد في ذاكرة الخادم: بعد إعادة التشغيل يزول (وتبقى الصفوف المستوردة).

## Campaigns and reports
nav-campaigns = الحملات
nav-reports = التقارير
percent = { $n }٪
campaigns-title = الحملات
campaigns-new = حملة جديدة
campaigns-none = لا حملات بعد. ترسل الحملة رسالة واحدة، أو حتى ثماني نسخ منها في اختبار A/B، إلى أعضاء الشرائح مرة واحدة.
campaigns-column-progress = الجمهور والتقدم
campaigns-progress = { $done } من { $total } في الطابور
campaigns-column-sent = المرسلة
campaigns-column-opened = المفتوحة
campaigns-column-clicked = المنقور عليها
campaign-not-found = لا توجد حملة برقم { $id }.
campaign-status-draft = مسودة
campaign-status-scheduled = مجدولة
campaign-status-sending = قيد الإرسال
campaign-status-paused = متوقفة مؤقتًا
campaign-status-completed = مكتملة
campaign-status-cancelled = ملغاة
campaign-new-title = حملة جديدة
campaign-edit-title = تعديل الحملة
campaign-read-only = يمكنك الاطلاع على هذه الحملة؛ وحدهم المسوّقون والمالكون يستطيعون تغييرها.
campaign-problems = في الحملة مشكلات؛ كل مشكلة معروضة عند حقلها.
campaign-audience = الجمهور
campaign-audience-segments = الإرسال إلى أعضاء أيٍّ من
campaign-audience-exclude = استبعاد أعضاء أيٍّ من
campaign-segment-missing = لا توجد هذه الشريحة
campaign-no-segments = لا شرائح للإرسال إليها. أنشئ واحدة أولًا من صفحة الشرائح.
campaign-audience-size = الجمهور الآن
campaign-audience-choose = اختر شريحة واحدة على الأقل للإرسال إليها.
campaign-audience-note = أعضاء أي شريحة مختارة ممن ليسوا في أي شريحة مستبعدة، كلٌّ منهم مرة واحدة، في هذه اللحظة. يلتقط الإرسال صورة للجمهور عند بدئه، لذا قد يختلف عدد من تصلهم الرسالة حينها.
campaign-message = الرسالة
campaign-channel = القناة
campaign-channel-auto = قناة قالب النسخة الأولى
campaign-variants = النسخ
campaign-variant = النسخة
campaign-variant-name = الاسم
campaign-variant-delay = التأخير
campaign-unit = الوحدة
campaign-unit-minutes = دقائق
campaign-unit-hours = ساعات
campaign-unit-days = أيام
campaign-minutes = { $count ->
    [zero] { $n } دقيقة
    [one] دقيقة واحدة
    [two] دقيقتان
    [few] { $n } دقائق
    [many] { $n } دقيقةً
   *[other] { $n } دقيقة
}
campaign-hours = { $count ->
    [zero] { $n } ساعة
    [one] ساعة واحدة
    [two] ساعتان
    [few] { $n } ساعات
    [many] { $n } ساعةً
   *[other] { $n } ساعة
}
campaign-days = { $count ->
    [zero] { $n } يوم
    [one] يوم واحد
    [two] يومان
    [few] { $n } أيام
    [many] { $n } يومًا
   *[other] { $n } يوم
}
campaign-variant-preview = معاينة
campaign-variant-preview-none = اختر قالبًا لمعاينته.
campaign-variant-open-template = فتح القالب
campaign-variant-remove = إزالة
campaign-variant-add = إضافة نسخة
campaign-variant-control = النسخة A هي المجموعة الضابطة في اختبار A/B.
campaign-test = اختبار A/B
campaign-test-on = إجراء اختبار A/B
campaign-test-intro = تتلقى حصة من الجمهور النسخ مقسّمة بالتساوي؛ وعند انتهاء الاختبار تُرسل النسخة الفائزة إلى البقية.
campaign-test-share = حصة الاختبار (٪)
campaign-test-metric = المقارنة على أساس
campaign-test-duration = مدة الاختبار
campaign-test-rule = قاعدة الفوز
campaign-test-threshold = عتبة الاحتمال
campaign-test-alpha = مستوى الدلالة (α)
campaign-test-fallback = إن لم تجد القاعدة فائزًا
campaign-metric-open_rate = معدل الفتح
campaign-metric-click_rate = معدل النقر
campaign-metric-conversion_rate = معدل التحويل
campaign-metric-revenue_per_recipient = الإيراد لكل مستلم
campaign-rule-probability_to_be_best = احتمال أن تكون الأفضل
campaign-rule-significance_test = اختبار الدلالة مقابل المجموعة الضابطة
campaign-fallback-control = الإبقاء على المجموعة الضابطة
campaign-fallback-best_observed = اختيار الأفضل ملاحظةً
campaign-delivery = التسليم
campaign-holdout-percent = مجموعة الاستبقاء (٪)
campaign-throttle-per-hour = الحد الأقصى في الساعة
campaign-quiet-start = ساعات الهدوء من
campaign-quiet-end = إلى
campaign-cap-defer = أقصى انتظار لحدود التكرار
campaign-delivery-note = ساعات الهدوء بتوقيت كل جهة اتصال (HH:MM). من دون حد في الساعة تُوضع الرسائل في الطابور بأقصى سرعة للمحرك؛ ويُتخطّى المستلم الذي تؤخره حدود التكرار أطول من مدة الانتظار (يوم واحد ما لم تُحدَّد).
campaign-save = حفظ المسودة
campaign-check = تحقّق
campaign-edit = تعديل
campaign-error-required = املأ هذا الحقل.
campaign-error-whole-number = اكتب عددًا صحيحًا.
campaign-error-decimal = اكتب عددًا، مثل ٠٫٩٥.
campaign-error-out-of-range = هذا العدد خارج النطاق.
campaign-error-datetime = اختر تاريخًا ووقتًا.
campaign-error-variant = اختر نسخة.
campaign-send-title = الإرسال
campaign-send-audience = جمهورها الآن { $n }.
campaign-send-confirm = هل تريد إرسال هذه الحملة إلى جمهورها؟ لا يمكن تعديلها بعد الإرسال.
campaign-send = إرسال الحملة
campaign-schedule = الموعد
campaign-schedule-now = الآن
campaign-schedule-at = في { $at }
campaign-schedule-at-label = في تاريخ ووقت محددين ({ $zone })
campaign-schedule-at-input = التاريخ والوقت
campaign-schedule-local = الساعة { $time } يوم { $date } بتوقيت كل جهة اتصال
campaign-schedule-local-label = في ساعة من اليوم بتوقيت كل جهة اتصال
campaign-schedule-date = التاريخ
campaign-schedule-time = الساعة
campaign-draft-read-only = لم تُرسل هذه المسودة بعد. وحدهم المسوّقون والمالكون يستطيعون إرسالها.
campaign-delete-confirm = هل تريد حذف هذه الحملة؟ تبقى رسائلها في السجل وفي الخط الزمني لجهات الاتصال.
campaign-cancel-confirm = هل تريد إلغاء هذه الحملة نهائيًا؟ لن يُضاف شيء إلى الطابور بعد الآن، وما في الطابور سيُسلَّم.
campaign-action-pause = إيقاف مؤقت
campaign-action-resume = استئناف
campaign-action-cancel = إلغاء الحملة
campaign-action-delete = حذف
campaign-winner-pick = اختيارها فائزة
campaign-winner-variant = الفائزة
campaign-winner-confirm = هل تريد إرسال هذه النسخة إلى بقية الجمهور الآن؟ لا يمكن تغيير هذا الاختيار.
campaign-starts-at = البدء
campaign-sent-at = الإرسال
campaign-completed-at = الاكتمال
campaign-progress = التقدم
campaign-held-out = المستبقون
campaign-queued = في الطابور
campaign-skipped = المتخطَّون
campaign-pending = المنتظرون
campaign-snapshot-done = اكتملت صورة الجمهور.
campaign-snapshot-running = جارٍ التقاط صورة الجمهور…
campaign-test-ends = ينتهي الاختبار { $at }
campaign-report = النتائج حسب النسخة
campaign-report-csv = تنزيل CSV
campaign-recipients = المستلمون
campaign-delivered = المسلَّمة
campaign-bounced = المرتدة
campaign-failed = الفاشلة
campaign-unique-opens = المفتوحة
campaign-unique-clicks = المنقور عليها
campaign-converted = المتحوّلون
campaign-per-recipient = { $value } لكل مستلم
campaign-interval-95 = (فترة ٩٥٪)
campaign-interval = { $low } – { $high }
campaign-probability-best = احتمال أن تكون الأفضل
campaign-p-value = قيمة p مقابل الضابطة
campaign-p-below = أقل من { $p }
campaign-winner = الفائزة
campaign-control = الضابطة
campaign-holdout = مجموعة الاستبقاء
campaign-holdout-note = مستبقون: لا يتلقون شيئًا، لقياس أثر الحملة
campaign-unsubscribed = إلغاء الاشتراك
campaign-complained = الشكاوى
campaign-lift = { $value } مقارنة بالمجموعة المستبقاة
campaign-points = { $value } نقطة مئوية
campaign-links = النقرات حسب الرابط
campaign-link = الرابط
campaign-link-clicks = النقرات
campaign-link-unique = الرسائل التي نُقر فيها
campaign-decision = الفائزة:
campaign-no-decision = لا فائز بعد: تحسم قاعدة الاختبار عند انتهائه، أو يختار شخص نسخة قبل ذلك.
campaign-decided-rule = اختارتها القاعدة ({ $rule }).
campaign-decided-fallback = لم تجد القاعدة فائزًا ({ $reason })؛ فاختار البديل: { $fallback }.
campaign-reason-not-significant = لم يكن أي فرق كبيرًا بما يكفي
campaign-reason-not-enough-data = كانت النسخ التي لديها بيانات قليلة جدًا
campaign-decided-manual = اختارها { $user }.
campaign-decided-manual-anonymous = اختارها شخص.
campaign-decided-error = تعذّر حساب الإحصاءات ({ $error })؛ أُبقي على المجموعة الضابطة.
campaign-decided-at = { $decision } ({ $at })
campaign-rule-probability = احتمال أن تكون الأفضل لا يقل عن { $threshold }
campaign-rule-significance = أفضل من الضابطة بدلالة إحصائية عند α = { $alpha }، مع التصحيح لعدد المقارنات
campaign-significance-level = تُقارن كل قيمة p بـ { $level } (α مقسومة على عدد المقارنات).
campaign-remainder-note = منذ اختيار الفائزة تشمل أعدادها رسائل بقية الجمهور؛ والأرقام التي بُني عليها الاختيار محفوظة مع القرار.
campaign-stats-note = المعدلات حصص من المستلمين. قراءة الأرقام أثناء الاختبار والتوقف مبكرًا يزيدان احتمال فائز خاطئ.
campaign-template-version = { $template }، الإصدار { $version }
campaign-version = الإصدار { $version }
campaign-chart-hourly = الفتح والنقر والتحويل في كل ساعة
campaign-chart-hours = حسب ساعة اليوم
campaign-chart-opens-by-hour = مرات الفتح حسب ساعة اليوم
campaign-chart-clicks-by-hour = النقرات حسب ساعة اليوم
campaign-hour-bar = الساعة { $hour } — { $n }
campaign-series-opens = مرات الفتح
campaign-series-clicks = النقرات
campaign-series-conversions = التحويلات
campaign-no-data = لا شيء بعد.
campaign-domains = قابلية التسليم حسب النطاق
campaign-domain = النطاق
campaign-definition = ماذا تُرسل ولمن
campaign-test-summary = { $share }٪ من الجمهور، المقارنة على أساس { $metric }، لمدة { $duration }
campaign-test-none = لا يوجد
campaign-test-none-split = لا يوجد: يُقسَّم المستلمون بالتساوي بين النسخ
campaign-throttle = تحديد السرعة
campaign-throttle-value = { $n } رسالة في الساعة كحد أقصى
campaign-throttle-none = بلا حد
campaign-quiet-hours = ساعات الهدوء
campaign-quiet-hours-value = من { $start } إلى { $end } بتوقيت كل جهة اتصال
campaign-quiet-hours-none = لا يوجد
campaign-json = التعريف بصيغة JSON
reports-title = التقارير
reports-csv = تنزيل CSV
reports-from = من
reports-until = إلى
reports-show = عرض
reports-error-date = اختر تاريخًا.
reports-range = من { $from } إلى { $until }
reports-intro = الرسائل والتحويلات والإيرادات حسب القناة والحملة والرحلة؛ المعدلات حصص من المستلمين.
reports-none = لا شيء في هذه الفترة.
reports-group-channel = حسب القناة
reports-group-campaign = حسب الحملة
reports-group-journey = حسب الرحلة
reports-total = المجموع
reports-deleted = #{ $key } (محذوفة)
conversions-title = التحويلات
conversions-intro = أي الأحداث تُعدّ تحويلات، وإلى متى بعد الرسالة يُنسب التحويل إليها: بعد الفتح أو النقر، أو بعد الإرسال إن لم تُفتح. تحصل آخر رسالة وصلت إلى جهة الاتصال على التحويل.
conversions-events = أحداث التحويل (حدث في كل سطر)
conversions-engaged-window = بعد الفتح أو النقر، خلال
conversions-delivered-window = بعد الإرسال، دون فتح، خلال
conversions-saved = حُفظت. تُحتسب أحداث التحويل الجديدة من الآن.

# Forms: the hosted page and the embedded form
form-submit = إرسال
form-sending = جارٍ الإرسال…
form-choose = اختر…
form-failed = تعذّر إرسال النموذج. تحقّق من اتصالك وحاول مرة أخرى.
form-invalid = يُرجى تصحيح الحقول المحدّدة أدناه.
form-not-found = هذا النموذج غير موجود أو تمت إزالته.
form-thanks-title = شكرًا لك
form-thanks-default = شكرًا لك! لقد استلمنا بياناتك.
form-refused-spam = يبدو أن إرسالك آلي ولم يُقبل.
form-refused-too-fast = أُرسل النموذج بسرعة كبيرة. انتظر قليلًا ثم أرسله مرة أخرى.
form-refused-stamp = انتهت صلاحية هذا النموذج. أعد تحميل الصفحة وأرسله مرة أخرى.
form-refused-pow = تعذّر على متصفحك إكمال التحقق الأمني. أعد تحميل الصفحة وحاول مرة أخرى.
form-refused-rate = عدد كبير جدًا من الإرسالات. يُرجى المحاولة بعد بضع دقائق.
form-refused-size = حجم الإرسال كبير جدًا.
form-refused-origin = لا يمكن إرسال هذا النموذج من هذا الموقع.
