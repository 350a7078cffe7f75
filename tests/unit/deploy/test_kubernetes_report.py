"""deploy/kubernetes/report.yaml: the weekly report e-mail as a CronJob that asks
`askagency report send --if-due` every hour, one Job at a time, with the SMTP password from the
Secret; the analytics consumer leaves the e-mail to it. (Schema validation of the file is
test_kubernetes.py's, for every manifest.)"""

from __future__ import annotations

import shlex

from tests.unit.deploy.test_kubernetes import of_kind


def test_the_weekly_report_cronjob_asks_every_hour_one_job_at_a_time() -> None:
    cronjob = of_kind("CronJob")["weekly-report"]
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    minute, hour, *_ = spec["schedule"].split()
    assert minute.isdigit() and hour == "*"  # hourly: --if-due decides, on the agency's clock
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["args"] == ["askagency", "report", "send", "--if-due"]
    env = {e["name"]: e for e in container["env"]}
    password = env["ASKAGENCY_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (password["name"], password["key"]) == ("askagency-secrets", "smtp-password")
    assert "smtp-password" in of_kind("Secret")["askagency-secrets"]["stringData"]
    config = of_kind("ConfigMap")["askagency-config"]["data"]
    assert config["ASKAGENCY_REPORT_SCHEDULE"] == "mon 08:00"
    assert not [k for k in config if "PASSWORD" in k]


def test_the_consumer_leaves_the_email_to_the_cronjob() -> None:
    consumer = of_kind("Deployment")["analytics"]["spec"]["template"]["spec"]["containers"][0]
    assert "--no-weekly-email" in consumer["args"]
    assert shlex.join(consumer["args"]).startswith("python -m analytics.consumer")
