//! Customers: onboarding with an account class, reading one (balance, PIN
//! state), and top-ups of the wallet from the clearing account.

use serde::{Deserialize, Serialize};
use serde_json::json;

use qrgate_core::{AccountId, Money};
use qrgate_store::*;

use super::*;
use crate::Reply;
use crate::trail::{self, Action};
use crate::views::amount;
use crate::{
    Error, Fresh, Gateway, Idem, Outcome, Principal, Role, clearing_account, wallet_account,
};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"account_class": "II"}))]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Wallet account class under 43: `I`, `II` (default) or `III`.
    #[serde(default = "class_ii")]
    pub account_class: String,
    /// Daily cap agreed with the customer for level-A payments, decimal string.
    pub level_a_daily_cap: Option<String>,
}

pub(super) fn class_ii() -> String {
    "II".into()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "cus_hfrymmz2r26kb3zen56ofpia2u", "object": "customer", "account_class": "II", "balance": "2000.00", "currency": "CNY", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct CustomerView {
    pub id: String,
    pub object: &'static str,
    pub account_class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level_a_daily_cap: Option<String>,
    pub balance: String,
    pub currency: String,
    /// Present while the payment PIN is locked (QG-PIN-LOCKOUT, QG-PIN-LOCK-MINUTES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin_locked_until: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "top_qxtkpcjg5hblwcjs4dv7kxmfu4", "object": "topup", "customer_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "amount": "500.00", "currency": "CNY", "balance": "2500.00", "created_at": "2026-11-25T13:27:46.000Z"}))]
pub struct TopupView {
    pub id: String,
    pub object: &'static str,
    pub customer_id: String,
    pub amount: String,
    pub currency: String,
    pub balance: String,
    pub created_at: String,
}

impl<S: Store> Gateway<S> {
    pub async fn create_customer(
        &self,
        p: &Principal,
        c: NewCustomer,
    ) -> Result<CustomerView, Error> {
        p.require(&[Role::Admin])?;
        if !["I", "II", "III"].contains(&c.account_class.as_str()) {
            return Err(Error::bad_request(
                "invalid_request",
                "account_class must be I, II or III",
            ));
        }
        let cap = c
            .level_a_daily_cap
            .as_deref()
            .map(|s| Money::parse_amount(s, crate::CURRENCY))
            .transpose()?;
        let id = self
            .new_id::<qrgate_core::id::kind::Customer>()?
            .to_string();
        let now = self.now();
        let mut m = Movement::new(now);
        m.records.push(Record::Customer(Customer {
            id: id.clone(),
            account_class: c.account_class.clone(),
            level_a_cap: cap.map(|m| m.minor()),
            created_at: now,
        }));
        m.records.push(Record::Account(owned_account(
            wallet_account(&id),
            "consumer_wallet",
            &id,
            now,
        )));
        m.audit = Some(admin_audit(
            Some(p),
            Action::CustomerCreated,
            &id,
            json!({ "account_class": c.account_class, "level_a_daily_cap_minor": cap.map(|m| m.minor()) }),
        ));
        self.store.apply(m).await?;
        Ok(CustomerView {
            id,
            object: "customer",
            account_class: c.account_class,
            level_a_daily_cap: cap.map(|m| m.to_decimal_string()),
            balance: "0.00".into(),
            currency: crate::CURRENCY.code().into(),
            pin_locked_until: None,
            created_at: now.to_rfc3339(),
        })
    }

    pub async fn get_customer(&self, p: &Principal, id: &str) -> Result<CustomerView, Error> {
        let visible = match p.role {
            Role::Admin | Role::Auditor => true,
            Role::Consumer => p.subject.as_deref() == Some(id),
            Role::Merchant => false,
        };
        let c = self
            .store
            .customer(id)
            .await?
            .filter(|_| visible)
            .ok_or_else(|| Error::not_found("customer", id))?;
        let bal = self
            .store
            .account(&wallet_account(id))
            .await?
            .map_or(0, |a| a.balance_minor);
        let now = self.now();
        let locked_until = self
            .store
            .credentials(id)
            .await?
            .and_then(|cr| cr.locked_until)
            .filter(|u| *u > now);
        Ok(CustomerView {
            id: c.id,
            object: "customer",
            account_class: c.account_class,
            level_a_daily_cap: c.level_a_cap.map(|m| amount(m, crate::CURRENCY)),
            balance: amount(bal, crate::CURRENCY),
            currency: crate::CURRENCY.code().into(),
            pin_locked_until: locked_until.map(|t| t.to_rfc3339()),
            created_at: c.created_at.to_rfc3339(),
        })
    }

    /// Fund a wallet from the external clearing account (card funding).
    pub async fn topup(
        &self,
        p: &Principal,
        customer: &str,
        amount_str: &str,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        p.require(&[Role::Admin])?;
        let amount = Money::parse_amount(amount_str, crate::CURRENCY)?;
        self.store
            .customer(customer)
            .await?
            .ok_or_else(|| Error::not_found("customer", customer))?;
        let now = self.now();
        let id = format!(
            "top_{}",
            self.new_id::<qrgate_core::id::kind::Payment>()?
                .to_string()
                .trim_start_matches("pay_")
        );
        let balance = self
            .store
            .account(&wallet_account(customer))
            .await?
            .map_or(0, |a| a.balance_minor);
        let view = TopupView {
            id: id.clone(),
            object: "topup",
            customer_id: customer.into(),
            amount: amount.to_decimal_string(),
            currency: crate::CURRENCY.code().into(),
            balance: crate::views::amount(balance.saturating_add(amount.minor()), crate::CURRENCY),
            created_at: now.to_rfc3339(),
        };
        let body = serde_json::to_string(&view).map_err(Error::internal)?;
        let mut m = Movement::new(now);
        m.idempotency = idem.map(|i| i.record(&Outcome::Created { view: &body }));
        m.posting = Some(Posting::transfer(
            format!("pst_{id}"),
            "topup",
            None,
            clearing_account(),
            wallet_account(customer),
            amount,
        ));
        m.audit = Some(trail::entry(
            Action::WalletTopup,
            customer,
            p.into(),
            json!({ "topup_id": id, "amount_minor": amount.minor() }),
        ));
        self.ensure_account(&clearing_account(), "external_clearing", true)
            .await?;
        Ok(Reply::of(self.store.apply(m).await?, Fresh::Created, body))
    }

    /// Create one of the gateway's own accounts (clearing, fee revenue)
    /// unless it exists.
    pub(crate) async fn ensure_account(
        &self,
        id: &AccountId,
        kind: &str,
        allow_negative: bool,
    ) -> Result<(), Error> {
        if self.store.account(id).await?.is_none() {
            match self
                .store
                .insert(Record::Account(Account {
                    id: id.clone(),
                    kind: kind.into(),
                    owner_id: None,
                    currency: crate::CURRENCY,
                    allow_negative,
                    balance_minor: 0,
                    created_at: self.now(),
                    closed_until: None,
                }))
                .await
            {
                Ok(()) | Err(StoreError::AlreadyExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}
