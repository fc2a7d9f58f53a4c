"""The hosted-CI workflow: previews both stacks with the policy pack on pull requests and runs
`pulumi up` dev then prod on main, one at a time, with pinned actions."""

import re
from pathlib import Path

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the bare key `on` as True.
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def test_pull_requests_preview_dev_and_prod_through_make_preview():
    main, stack = load("pulumi.yml"), load("pulumi-stack.yml")
    assert "pull_request" in main["on"] and main["on"]["push"]["branches"] == ["main"]
    preview = main["jobs"]["preview"]
    assert preview["if"] == "github.event_name == 'pull_request'"
    assert preview["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    assert preview["with"]["command"] == "preview"
    runs = [s.get("run", "") for s in stack["jobs"]["pulumi"]["steps"]]
    assert any('make preview STACK="$STACK"' in r for r in runs)
    assert any("make bootstrap" in r for r in runs)


def test_main_runs_up_dev_then_prod_with_environments_and_no_cancelling():
    jobs = load("pulumi.yml")["jobs"]
    for env in ("dev", "prod"):
        job = jobs[f"up-{env}"]
        assert "refs/heads/main" in job["if"] and "push" in job["if"]
        assert job["with"] == {"stack": env, "command": "up", "environment": env}
        assert job["concurrency"] == {"group": f"pulumi-up-{env}", "cancel-in-progress": False}
    assert jobs["up-prod"]["needs"] == "up-dev"
    stack = load("pulumi-stack.yml")["jobs"]["pulumi"]
    assert stack["environment"] == "${{ inputs.environment }}"
    up = next(s["run"] for s in stack["steps"] if s.get("name") == "Up with the policy pack")
    assert 'pulumi up --stack "$STACK" --yes' in up and "--policy-pack policy" in up


def test_every_action_is_pinned_to_a_commit():
    for path in WORKFLOWS.glob("*.yml"):
        for ref in re.findall(r"uses:\s*(\S+)", path.read_text()):
            if ref.startswith("./"):
                continue
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"
