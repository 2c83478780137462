-- Notification sinks: where a tenant's quality and approval notifications go. A sink is a
-- trigger of its own kind, delivered by sluice-triggers through the same queue, history
-- and auto-pause: 'notify_webhook' (signed JSON) or 'notify_slack' (a Slack-compatible
-- incoming webhook, whose URL is the secret). Its predicate is fixed by sluice-triggers;
-- quality_threshold is the score a completed profile must reach not to notify.
ALTER TABLE event_trigger
  ADD COLUMN kind text NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook', 'notify_webhook', 'notify_slack')),
  ADD COLUMN quality_threshold integer NOT NULL DEFAULT 70 CHECK (quality_threshold BETWEEN 1 AND 100);
