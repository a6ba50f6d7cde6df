//! Merchants: onboarding (name, city, category, owner for a small
//! personal merchant), reading one, and how its codes display it.

use serde::Deserialize;
use serde_json::json;

use qrgate_codes::emv::LanguageTemplate;
use qrgate_codes::merchant::MerchantDisplay;
use qrgate_core::fee::FeeSchedule;
use qrgate_core::{Currency, Money};
use qrgate_store::*;

use super::*;
use crate::trail::Action;
use crate::views::MerchantView;
use crate::{Error, Gateway, Principal, Role};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"name": "OLD STREET NOODLES", "city": "SHANGHAI", "country": "CN", "mcc": "5812", "currency": "CNY", "category": "small_personal", "owner_ref": "kyc-20931", "name_local": "老街面馆", "fee_rate_bps": 38}))]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    pub name: String,
    pub city: String,
    #[serde(default = "cn")]
    pub country: String,
    pub mcc: String,
    #[serde(default = "cny")]
    pub currency: String,
    /// `regular` or `small_personal` (onboarded with a personal ID only).
    #[serde(default = "regular")]
    pub category: String,
    /// The name in Chinese (or another local language), shown in template 64.
    pub name_local: Option<String>,
    /// Required for `small_personal`: an opaque reference to the person
    /// behind the merchant (the acquirer's KYC record id, never the ID
    /// number), the same for all their merchant entries, so caps apply
    /// per person. 1 to 64 of `A-Z a-z 0-9 . _ : -`.
    pub owner_ref: Option<String>,
    /// The merchant's fee rate in basis points of each payment (60 =
    /// 0.6%, at most 10000). Without it, the default of its category
    /// (rules QG-FEE-REGULAR, QG-FEE-SMALL-PERSONAL).
    pub fee_rate_bps: Option<u32>,
    /// The least a payment costs the merchant, as a decimal amount
    /// ("0.01"); none by default.
    pub fee_minimum: Option<String>,
    /// The bank account payouts go to: 12 to 19 digits (the sandbox
    /// bank's accounts are in the README). Without one, the merchant's
    /// settled money stays available.
    pub bank_account: Option<String>,
}

impl NewMerchant {
    /// A regular merchant in mainland China taking CNY, with its
    /// category's fees, no local name and no bank account: the defaults a
    /// request body gets; set the rest as needed.
    pub fn regular(name: &str, city: &str, mcc: &str) -> NewMerchant {
        NewMerchant {
            name: name.into(),
            city: city.into(),
            country: cn(),
            mcc: mcc.into(),
            currency: cny(),
            category: regular(),
            name_local: None,
            owner_ref: None,
            fee_rate_bps: None,
            fee_minimum: None,
            bank_account: None,
        }
    }
}

pub(super) fn cn() -> String {
    "CN".into()
}
pub(super) fn cny() -> String {
    crate::CURRENCY.code().into()
}
pub(super) fn regular() -> String {
    "regular".into()
}

impl<S: Store> Gateway<S> {
    pub async fn create_merchant(
        &self,
        p: &Principal,
        m: NewMerchant,
    ) -> Result<MerchantView, Error> {
        p.require(&[Role::Admin])?;
        let cur = check_new_merchant(&m)?;
        let fees = self.fees_of(&m, cur)?;
        let id = self
            .new_id::<qrgate_core::id::kind::Merchant>()?
            .to_string();
        let now = self.now();
        let row = Merchant {
            id: id.clone(),
            name: m.name,
            city: m.city,
            country: m.country,
            mcc: m.mcc,
            currency: cur,
            category: m.category,
            name_local: m.name_local,
            owner_ref: m.owner_ref,
            fees,
            bank_account: m.bank_account,
            created_at: now,
        };
        let mut m = Movement::new(now);
        m.records.push(Record::Merchant(row.clone()));
        m.records
            .extend(merchant_accounts(&id, now).map(Record::Account));
        m.audit = Some(admin_audit(
            Some(p),
            Action::MerchantCreated,
            &id,
            json!({ "name": row.name, "category": row.category, "mcc": row.mcc, "fee_rate_bps": fees.rate_bps, "fee_min_minor": fees.min_fee_minor }),
        ));
        self.store.apply(m).await?;
        Ok(MerchantView::of(&row))
    }

    pub async fn get_merchant(&self, p: &Principal, id: &str) -> Result<MerchantView, Error> {
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Merchant => p.subject.as_deref() == Some(id),
            Role::Consumer => false,
        };
        let m = self
            .store
            .merchant(id)
            .await?
            .filter(|_| visible)
            .ok_or_else(|| Error::not_found("merchant", id))?;
        Ok(MerchantView::of(&m))
    }

    /// A new merchant's fee schedule: its own, or its category's default.
    fn fees_of(&self, m: &NewMerchant, cur: Currency) -> Result<FeeSchedule, Error> {
        let rate = m.fee_rate_bps.unwrap_or(match m.category.as_str() {
            "small_personal" => self.limits.fee_small_personal_bps,
            _ => self.limits.fee_regular_bps,
        });
        let minimum = match &m.fee_minimum {
            None => 0,
            Some(a) => Money::parse_amount(a, cur)
                .map_err(|e| {
                    Error::bad_request(
                        "invalid_request",
                        format!("fee_minimum must be a positive decimal amount such as \"0.01\" (leave it out for none): {e}"),
                    )
                })?
                .minor(),
        };
        FeeSchedule::new(rate, minimum)
            .map_err(|e| Error::bad_request("invalid_request", e.to_string()))
    }

    pub(super) fn display(m: &Merchant) -> MerchantDisplay {
        MerchantDisplay {
            name: m.name.clone(),
            city: m.city.clone(),
            country: m.country.clone(),
            mcc: m.mcc.clone(),
            currency: crate::CURRENCY,
            postal_code: None,
            language: m.name_local.as_ref().map(|n| LanguageTemplate {
                language: "ZH".into(),
                name: n.clone(),
                city: None,
            }),
        }
    }

    pub(super) async fn merchant_of(&self, p: &Principal) -> Result<Merchant, Error> {
        let id = p.merchant()?;
        self.store
            .merchant(id)
            .await?
            .ok_or_else(|| Error::not_found("merchant", id))
    }
}

/// What a new merchant must be: EMVCo's lengths for the name and city, an
/// ISO 18245 category code, an ISO 3166 country, the gateway's currency
/// (returned), a known category, and an owner reference exactly when it is
/// a small personal merchant.
fn check_new_merchant(m: &NewMerchant) -> Result<Currency, Error> {
    check_len("name", &m.name, 25)?;
    check_len("city", &m.city, 15)?;
    if let Some(l) = &m.name_local {
        check_len("name_local", l, 25)?;
    }
    if m.mcc.len() != 4 || !m.mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::bad_request(
            "invalid_request",
            "mcc must be four digits (ISO 18245), e.g. 5812",
        ));
    }
    if m.country.len() != 2 || !m.country.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(Error::bad_request(
            "invalid_request",
            "country must be two upper-case letters (ISO 3166-1), e.g. CN",
        ));
    }
    let cur = Currency::from_code(&m.currency)
        .map_err(|e| Error::bad_request("unknown_currency", e.to_string()))?;
    if cur != crate::CURRENCY {
        return Err(Error::bad_request(
            "currency_not_supported",
            format!(
                "merchants settle in {0}: the barcode-payment limits are stated in {0}",
                crate::CURRENCY
            ),
        ));
    }
    if let Some(a) = &m.bank_account
        && !qrgate_processor::bank::check_account(a)
    {
        return Err(Error::bad_request(
            "invalid_request",
            "bank_account must be 12 to 19 digits",
        ));
    }
    if m.category != "regular" && m.category != "small_personal" {
        return Err(Error::bad_request(
            "invalid_request",
            "category must be regular or small_personal",
        ));
    }
    match (m.category.as_str(), &m.owner_ref) {
        ("small_personal", None) => {
            return Err(Error::bad_request(
                "owner_ref_required",
                "a small_personal merchant needs owner_ref: the reference of the person behind it (their credit-card receipts are capped per person, BCP-SMALL-MERCHANT-CREDIT-DAY)",
            ));
        }
        ("regular", Some(_)) => {
            return Err(Error::bad_request(
                "invalid_request",
                "owner_ref is only for small_personal merchants",
            ));
        }
        (_, Some(r))
            if r.is_empty()
                || r.len() > 64
                || !r
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)) =>
        {
            return Err(Error::bad_request(
                "invalid_request",
                "owner_ref must be 1 to 64 of A-Z a-z 0-9 . _ : - (an opaque reference, not an ID number)",
            ));
        }
        _ => {}
    }
    Ok(cur)
}
