//! CPM: the merchant charges the payment code the consumer shows.

use qrgate_core::payment::Mode;
use qrgate_core::risk;
use qrgate_core::{Metadata, Money};
use qrgate_store::*;

use super::settle::Sale;
use crate::funding::Source;
use crate::{Error, Gateway, Idem, Principal, Reply};

impl<S: Store> Gateway<S> {
    /// CPM: the merchant's cashier scanned the consumer's payment code.
    pub async fn charge(
        &self,
        p: &Principal,
        auth_code: &str,
        amount: &str,
        out_trade_no: Option<String>,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        self.charge_with_metadata(
            p,
            auth_code,
            amount,
            out_trade_no,
            &Metadata::default(),
            idem,
        )
        .await
    }

    /// [`Self::charge`], with the merchant's notes on the payment.
    pub async fn charge_with_metadata(
        &self,
        p: &Principal,
        auth_code: &str,
        amount: &str,
        out_trade_no: Option<String>,
        metadata: &Metadata,
        idem: Option<Idem>,
    ) -> Result<Reply, Error> {
        let merchant_id = p.merchant()?.to_owned();
        if let Some(n) = &out_trade_no {
            crate::check_merchant_number("out_trade_no", n)?;
        }
        let amount = Money::parse_amount(amount, crate::CURRENCY)?;
        let merchant = self
            .merchant_row(&merchant_id)
            .await?
            .ok_or_else(|| Error::not_found("merchant", &merchant_id))?;
        let now = self.now();
        let payer = self.payer_of_for(p, auth_code, now).await?;
        let level = risk::level(&payer.elements, false);
        let burn = CodeBurn {
            key: payer.burn_key.clone(),
            payment_id: None,
            expires_at: payer.burn_expires,
        };
        let sale = Sale {
            mode: Mode::Cpm,
            code_kind: Some(payer.code_kind),
            merchant: &merchant,
            customer: &payer.customer,
            amount,
            level,
            elements: &payer.elements,
            source: &Source::Wallet,
            order: None,
            device: payer.device_id.as_deref(),
            static_code: None,
            metadata: Some(metadata),
        };
        self.settle(p, sale, Some(burn), out_trade_no, idem).await
    }
}
