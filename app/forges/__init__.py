"""GitHub and GitLab: webhook verification and parsing (pure), and their REST APIs for PRs/MRs."""
