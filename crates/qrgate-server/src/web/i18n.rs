//! Every string the pages show, one catalogue per language (English and
//! Simplified Chinese), chosen by the `lang` cookie or Accept-Language.

use axum::http::HeaderMap;

/// A page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Zh,
}

impl Lang {
    /// The `lang` cookie, else the first of Accept-Language we speak,
    /// else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(l) = super::cookie(headers, "lang").and_then(|v| Lang::parse(&v)) {
            return l;
        }
        let accept = headers
            .get("accept-language")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        accept
            .split(',')
            .filter_map(|part| Lang::parse(part.split(';').next().unwrap_or_default().trim()))
            .next()
            .unwrap_or(Lang::En)
    }

    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.to_ascii_lowercase();
        if tag == "zh" || tag.starts_with("zh-") {
            Some(Lang::Zh)
        } else if tag == "en" || tag.starts_with("en-") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The HTML `lang` attribute.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// The other language (the switch offers it).
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Zh,
            Lang::Zh => Lang::En,
        }
    }

    pub fn text(self) -> &'static Text {
        match self {
            Lang::En => &EN,
            Lang::Zh => &ZH,
        }
    }
}

/// The strings of one language.
#[derive(Debug)]
pub struct Text {
    pub language_name: &'static str,
    pub product: &'static str,
    pub sign_in: &'static str,
    pub sign_in_intro: &'static str,
    pub api_key: &'static str,
    pub sign_out: &'static str,
    pub signed_in_as: &'static str,
    pub console: &'static str,
    pub cashier: &'static str,
    pub static_codes: &'static str,
    pub today: &'static str,
    pub payments_today: &'static str,
    pub amount_today: &'static str,
    pub balance_pending: &'static str,
    pub balance_available: &'static str,
    pub recent_payments: &'static str,
    pub no_payments: &'static str,
    pub time: &'static str,
    pub amount: &'static str,
    pub status: &'static str,
    pub payment: &'static str,
    pub charge_amount: &'static str,
    pub wallet: &'static str,
    pub complaints: &'static str,
    pub complaint: &'static str,
    pub no_complaints: &'static str,
    pub reason: &'static str,
    pub due: &'static str,
    pub steps: &'static str,
    pub photos: &'static str,
    pub photo: &'static str,
    pub answer: &'static str,
    pub answer_refund: &'static str,
    pub answer_explain: &'static str,
    pub answer_reject: &'static str,
    pub answer_amount_help: &'static str,
    pub answer_text: &'static str,
    pub send: &'static str,
    pub contest: &'static str,
    pub contest_reason: &'static str,
    pub balance: &'static str,
    pub pay_code: &'static str,
    pub pay_code_help: &'static str,
    pub my_payments: &'static str,
    pub shop: &'static str,
    pub customer_code: &'static str,
    pub customer_code_help: &'static str,
    pub waiting_for_confirmation: &'static str,
    pub declined: &'static str,
    pub canceled: &'static str,
    pub refunded: &'static str,
    pub refund_amount: &'static str,
    pub refund: &'static str,
    pub cancel_payment: &'static str,
    pub show_code: &'static str,
    pub new_sale: &'static str,
    pub scan_to_pay: &'static str,
    pub waiting_for_payer: &'static str,
    pub paid: &'static str,
    pub expired: &'static str,
    pub closed: &'static str,
    pub expires_in: &'static str,
    pub seconds: &'static str,
    pub create_static_code: &'static str,
    pub no_static_codes: &'static str,
    pub poster: &'static str,
    pub print: &'static str,
    pub download_svg: &'static str,
    pub paper_size: &'static str,
    pub code_id: &'static str,
    pub check_genuine: &'static str,
    pub status_active: &'static str,
    pub status_suspended: &'static str,
    pub status_revoked: &'static str,
    pub error_title: &'static str,
    pub back: &'static str,
    pub not_for_role: &'static str,
}

pub static EN: Text = Text {
    language_name: "English",
    product: "qrgate",
    sign_in: "Sign in",
    sign_in_intro: "Sign in with the API key you were given (merchant, consumer, auditor or admin). The page remembers you until you sign out or the session ends.",
    api_key: "API key",
    sign_out: "Sign out",
    signed_in_as: "Signed in as",
    console: "Console",
    cashier: "Cashier",
    static_codes: "Static codes",
    today: "Today",
    payments_today: "Payments today",
    amount_today: "Taken today",
    balance_pending: "Pending settlement",
    balance_available: "Available",
    recent_payments: "Recent payments",
    no_payments: "No payments yet.",
    time: "Time",
    amount: "Amount",
    status: "Status",
    payment: "Payment",
    charge_amount: "Amount to charge",
    wallet: "Wallet",
    complaints: "Complaints",
    complaint: "Complaint",
    no_complaints: "No complaints.",
    reason: "Reason",
    due: "Due by",
    steps: "What happened",
    photos: "Photos",
    photo: "Photo",
    answer: "Answer",
    answer_refund: "Refund the payer",
    answer_explain: "Explain",
    answer_reject: "Reject, with the reason",
    answer_amount_help: "For a refund: leave empty to refund all that is disputed, or refund part of it.",
    answer_text: "Your words to the payer",
    send: "Send",
    contest: "Contest the instant refund",
    contest_reason: "Why (for the operator, who decides who bears it)",
    balance: "Balance",
    pay_code: "Payment code",
    pay_code_help: "Show this to the cashier. It works once, and a new one replaces it every minute; never share a photo of it.",
    my_payments: "My payments",
    shop: "Shop",
    customer_code: "Customer's payment code",
    customer_code_help: "Scan the customer's code into this field (the scanner types it and presses Enter), or paste it. Leave it empty and press the button to show your code instead.",
    waiting_for_confirmation: "Waiting for the payer to confirm",
    declined: "Declined",
    canceled: "Canceled",
    refunded: "Refunded",
    refund_amount: "Amount to refund",
    refund: "Refund",
    cancel_payment: "Cancel the payment",
    show_code: "Show the code",
    new_sale: "New sale",
    scan_to_pay: "Scan to pay",
    waiting_for_payer: "Waiting for the customer to pay",
    paid: "Paid",
    expired: "Expired: start a new sale",
    closed: "Closed",
    expires_in: "Expires in",
    seconds: "s",
    create_static_code: "Make a static code",
    no_static_codes: "No static codes yet.",
    poster: "Poster",
    print: "Print",
    download_svg: "Download SVG",
    paper_size: "Paper",
    code_id: "Code",
    check_genuine: "Before you pay, check that your wallet shows the shop's name and city printed here, verified by qrgate. If it shows another name, do not pay: tell the staff.",
    status_active: "active",
    status_suspended: "suspended (reported tampered; under review)",
    status_revoked: "revoked",
    error_title: "That did not work",
    back: "Back",
    not_for_role: "This page is not for your role.",
};

pub static ZH: Text = Text {
    language_name: "中文",
    product: "qrgate",
    sign_in: "登录",
    sign_in_intro: "使用分配给您的 API 密钥登录（商户、消费者、审计或管理员）。退出或会话到期前，页面会记住您。",
    api_key: "API 密钥",
    sign_out: "退出",
    signed_in_as: "当前身份",
    console: "控制台",
    cashier: "收银台",
    static_codes: "静态收款码",
    today: "今日",
    payments_today: "今日笔数",
    amount_today: "今日收款",
    balance_pending: "待结算",
    balance_available: "可用余额",
    recent_payments: "最近收款",
    no_payments: "暂无收款。",
    time: "时间",
    amount: "金额",
    status: "状态",
    payment: "支付单",
    charge_amount: "收款金额",
    wallet: "钱包",
    complaints: "投诉",
    complaint: "投诉单",
    no_complaints: "暂无投诉。",
    reason: "原因",
    due: "期限",
    steps: "处理记录",
    photos: "照片",
    photo: "照片",
    answer: "回复",
    answer_refund: "退款给付款人",
    answer_explain: "说明情况",
    answer_reject: "拒绝（请说明理由）",
    answer_amount_help: "退款时：留空则退还全部争议金额，或只退部分。",
    answer_text: "给付款人的说明",
    send: "提交",
    contest: "对即时退款提出异议",
    contest_reason: "理由（供平台裁决由谁承担）",
    balance: "余额",
    pay_code: "付款码",
    pay_code_help: "向收银员出示此码。每个码只能用一次，每分钟自动更新；切勿将截图发给他人。",
    my_payments: "我的支付",
    shop: "商户",
    customer_code: "顾客付款码",
    customer_code_help: "将顾客的付款码扫入此框（扫码枪会输入并回车），或粘贴。留空并按按钮则显示本店收款码。",
    waiting_for_confirmation: "等待付款人确认",
    declined: "已拒绝",
    canceled: "已撤销",
    refunded: "已退款",
    refund_amount: "退款金额",
    refund: "退款",
    cancel_payment: "撤销交易",
    show_code: "生成收款码",
    new_sale: "新的收款",
    scan_to_pay: "扫码付款",
    waiting_for_payer: "等待顾客付款",
    paid: "已付款",
    expired: "已过期：请重新收款",
    closed: "已关闭",
    expires_in: "剩余",
    seconds: "秒",
    create_static_code: "生成静态收款码",
    no_static_codes: "暂无静态收款码。",
    poster: "收款码海报",
    print: "打印",
    download_svg: "下载 SVG",
    paper_size: "纸张",
    code_id: "收款码编号",
    check_genuine: "付款前，请确认钱包显示的是此处印有的店名和城市，并由 qrgate 验证。若显示其他名称，请勿付款并告知店员。",
    status_active: "有效",
    status_suspended: "已暂停（被举报遭篡改，审核中）",
    status_revoked: "已作废",
    error_title: "操作未成功",
    back: "返回",
    not_for_role: "此页面不适用于您的角色。",
};
