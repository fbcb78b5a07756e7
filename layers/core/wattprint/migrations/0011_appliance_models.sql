-- Appliance state models (wattprint.appliances): one per appliance, learnt from a recording of it alone and
-- used to label each second of a mains recording with every appliance's state. A name is one column of the
-- labelled CSV, so two names that differ only in case would be confusing: they are the same appliance.
CREATE TABLE appliance_models (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    model      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX appliance_models_name ON appliance_models (lower(name));
