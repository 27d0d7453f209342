"""What to run about a refusal: the CLI's commands, after the policy's reason.

The policy explains a decision in plain words; it is the gateway's pure core and knows no
commands. Where an owner reads the reason (``tbx access``, the console's Agents pane, the
gateway's audit records) the command that lifts the refusal follows it, when one does.
"""

from __future__ import annotations

from console.policy import CompiledPolicy, Decision, Reason


def hint(policy: CompiledPolicy, decision: Decision, agent_id: str, server_id: str, ref: str) -> str:
    """`` ('tbx ...')`` for a refusal one command lifts, else ``""``."""
    agent, toolbox, server = policy.names(agent_id, server_id)
    match decision.reason:
        case Reason.AGENT_DISABLED:
            return f" ('tbx agent enable {agent}')"
        case Reason.NO_TOOLBOX_GRANT:
            return f" ('tbx grant {agent} {toolbox}' opens it)"
        case Reason.TOOL_PENDING:
            return f" ('tbx tools approve {toolbox}/{server}/{ref}')"
        case Reason.SERVER_NOT_RUNNING:
            return f" ('tbx server start {toolbox}/{server}')"
    return ""


def explain(policy: CompiledPolicy, decision: Decision, agent_id: str, server_id: str, ref: str) -> str:
    """The policy's reason for ``decision``, and what to run about it."""
    return policy.explain(decision, agent_id, server_id, ref) + hint(policy, decision, agent_id, server_id, ref)
