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
contacts-search-placeholder = البريد الإلكتروني أو معرّف المستخدم أو الهاتف
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

journeys-title = الرحلات
journeys-none = لا توجد رحلة بعد. أنشئ واحدة، أو ثبّت رحلة جاهزة من الأسفل.
journeys-new = رحلة جديدة
journeys-gallery = رحلات جاهزة
journeys-gallery-intro = تُثبَّت كل واحدة مسودةً مع القوالب التي ترسلها؛ عدّلها ثم انشرها.
journeys-install = تثبيت
journeys-start-from = البدء منها
column-version = الإصدار
column-updated = آخر تحديث
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
stat-conversions = التحويلات
stat-revenue = الإيرادات
stat-set-aside = المنحّاة
stat-reached = الواصلون
stat-waiting = المنتظرون الآن
stat-sent = المُرسَل
stat-opened = المفتوح
stat-clicked = النقرات
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
