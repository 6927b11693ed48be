"""Template tier: template.yaml against the event-type list, IAM, sam validate --lint, sam build and checkov."""
