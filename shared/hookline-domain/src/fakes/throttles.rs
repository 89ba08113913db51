//! The rate limits' shared state in a map, versioned as the port says.

use super::{Calls, Op, lock};
use crate::ids::{TenantId, WebhookId};
use crate::ports::{StoreError, ThrottleStore};
use crate::throttle::ThrottleState;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Each webhook's state and version.
pub(crate) struct FakeThrottleStore {
    pub(super) calls: Arc<Calls>,
    pub(super) items: Mutex<HashMap<(TenantId, WebhookId), (ThrottleState, u64)>>,
}

#[async_trait]
impl ThrottleStore for FakeThrottleStore {
    async fn update(
        &self,
        tenant: &TenantId,
        webhook: &WebhookId,
        change: &mut (dyn for<'s> FnMut(&'s mut ThrottleState) + Send),
    ) -> Result<(), StoreError> {
        self.calls.store(Op::ThrottleUpdate)?;
        let mut items = lock(&self.items);
        let entry = items.entry((tenant.clone(), webhook.clone())).or_default();
        let mut state = entry.0.clone();
        change(&mut state);
        if state != entry.0 {
            *entry = (state, entry.1 + 1);
        }
        Ok(())
    }
}
