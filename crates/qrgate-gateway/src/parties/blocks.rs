//! The block list: an admin blocks a merchant or a customer (every
//! movement checks it again as it is written) and lifts the block.

use serde::Serialize;
use serde_json::json;

use qrgate_store::*;

use super::*;
use crate::fresh::{self, Verdict};
use crate::trail::Action;
use crate::{Error, Gateway, Kind, Principal, Role};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"id": "blk_agrbhgxplpcb4vkb5zkrvmzejy", "object": "block", "subject_id": "cus_hfrymmz2r26kb3zen56ofpia2u", "reason": "card-testing pattern reported by the issuer", "created_at": "2026-11-25T13:27:45.000Z"}))]
pub struct BlockView {
    pub id: String,
    pub object: &'static str,
    pub subject_id: String,
    pub reason: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifted_at: Option<String>,
}

impl BlockView {
    fn of(b: &Block) -> BlockView {
        BlockView {
            id: b.id.clone(),
            object: "block",
            subject_id: b.subject_id.clone(),
            reason: b.reason.clone(),
            created_at: b.created_at.to_rfc3339(),
            lifted_at: b.lifted_at.map(|t| t.to_rfc3339()),
        }
    }
}

impl<S: Store> Gateway<S> {
    /// Put a merchant or a customer on the block list (QG-BLOCKLIST): from
    /// now on their payments are declined, and recorded as such.
    pub async fn block(
        &self,
        p: &Principal,
        subject_id: &str,
        reason: &str,
    ) -> Result<BlockView, Error> {
        p.require(&[Role::Admin])?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 200 {
            return Err(Error::bad_request(
                "invalid_reason",
                "reason must be 1 to 200 characters: why the party is blocked, for the operator",
            ));
        }
        let exists = if subject_id.starts_with("mch_") {
            self.store.merchant(subject_id).await?.is_some()
        } else if subject_id.starts_with("cus_") {
            self.store.customer(subject_id).await?.is_some()
        } else {
            false
        };
        if !exists {
            return Err(Error::not_found("merchant or customer", subject_id));
        }
        let b = Block {
            id: self.new_id::<qrgate_core::id::kind::Block>()?.to_string(),
            subject_id: subject_id.to_owned(),
            reason: reason.to_owned(),
            created_at: self.now(),
            lifted_at: None,
        };
        let mut m = Movement::new(b.created_at);
        m.records.push(Record::Block(b.clone()));
        m.audit = Some(admin_audit(
            Some(p),
            Action::BlockCreated,
            &b.id,
            json!({ "subject_id": b.subject_id, "reason": b.reason }),
        ));
        let applied = self.store.apply(m).await;
        // After the write, so a read of the list from before it is not kept either.
        self.blocks.invalidate();
        applied?;
        Ok(BlockView::of(&b))
    }

    /// Lift a block; payments of that party are accepted again.
    pub async fn lift_block(&self, p: &Principal, id: &str) -> Result<BlockView, Error> {
        p.require(&[Role::Admin])?;
        let now = self.now();
        let audit = admin_audit(Some(p), Action::BlockLifted, id, json!({}));
        let lifted = self.store.lift_block(id, now, audit).await;
        self.blocks.invalidate();
        if !lifted? {
            return match self.store.block(id).await? {
                None => Err(Error::not_found("block", id)),
                Some(_) => Err(Error::new(
                    Kind::Conflict,
                    "block_already_lifted",
                    format!("block {id} was already lifted"),
                )),
            };
        }
        let b = self
            .store
            .block(id)
            .await?
            .ok_or_else(|| Error::not_found("block", id))?;
        Ok(BlockView::of(&b))
    }

    /// Refusal when the merchant or the payer is blocked (QG-BLOCKLIST),
    /// from a copy of the block list up to a second old. Every movement
    /// after this check must name both parties in `Movement::unblocked`,
    /// so a block made on another gateway a moment ago still holds.
    pub(crate) async fn blocked(
        &self,
        merchant_id: &str,
        customer_id: &str,
    ) -> Result<Option<Error>, Error> {
        let parties = [merchant_id, customer_id];
        let mut verdict = self.blocks.check(parties, self.now());
        if verdict == Verdict::Unknown {
            let generation = self.blocks.generation();
            let read_at = self.now();
            let subjects = self.store.blocked_subjects(fresh::MAX_BLOCKED + 1).await?;
            self.blocks.put(subjects, read_at, generation);
            verdict = self.blocks.check(parties, read_at);
        }
        let blocked = match verdict {
            Verdict::Blocked(who) => Some(who),
            Verdict::Clear => None,
            // Too long to keep, or invalidated while it was read: ask about these two.
            Verdict::TooMany | Verdict::Unknown => self
                .store
                .active_blocks(merchant_id, customer_id)
                .await?
                .into_iter()
                .next()
                .map(|b| b.subject_id),
        };
        Ok(blocked.map(|who| Error::party_blocked(&who)))
    }
}
