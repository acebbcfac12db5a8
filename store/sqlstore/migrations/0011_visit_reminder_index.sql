-- Every node looks for visits whose reminder is due about once a minute
-- (UnremindedVisits). This index holds only booked visits still waiting
-- for their reminder, in start order, so that look-up reads the few due
-- rows instead of scanning every visit the practice ever had.
CREATE INDEX visits_reminder_due ON visits (starts_at, id) WHERE state = 'booked' AND reminded_us IS NULL;
