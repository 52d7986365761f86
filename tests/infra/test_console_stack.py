"""The console stack: a private bucket behind CloudFront with origin access control, HTTPS only, the API
under /v1/* of the same origin, and Cognito staff whose role invokes exactly the console's routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match, Template

from stacks.constants import CONSOLE_ROUTES, STAFF_ROUTES
from tests.infra.conftest import Synthesized

STACK = "Merchandiser-Console"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


def console(synthesized: Synthesized) -> Template:
    return Template.from_json(synthesized.templates[STACK])


def one(synthesized: Synthesized, resource_type: str) -> dict[str, Any]:
    [(_, resource)] = synthesized.resources(STACK, resource_type).items()
    return resource["Properties"]


def test_the_site_bucket_is_private_encrypted_and_ssl_only(synthesized: Synthesized) -> None:
    template = console(synthesized)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": Match.object_like({"ServerSideEncryptionConfiguration": Match.any_value()}),
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "site/"}),
        },
    )  # fmt: skip
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources(STACK, "AWS::S3::BucketPolicy").values()
    ]
    for statements in policies:  # both buckets refuse plain HTTP
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    # only CloudFront reads the site, and only for this distribution (origin access control)
    reads = [
        s
        for statements in policies
        for s in statements
        if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert len(reads) == 1 and reads[0]["Action"] == "s3:GetObject"
    assert "AWS:SourceArn" in json.dumps(reads[0]["Condition"])


def test_cloudfront_serves_the_console_over_https_with_the_api_under_the_same_origin(
    synthesized: Synthesized,
) -> None:
    access_control = one(synthesized, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert (
        access_control["OriginAccessControlOriginType"] == "s3"
        and access_control["SigningBehavior"] == "always"
    )
    config = one(synthesized, "AWS::CloudFront::Distribution")["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html" and "Logging" in config
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    [api] = config["CacheBehaviors"]
    assert api["PathPattern"] == "/v1/*" and api["ViewerProtocolPolicy"] == "https-only"
    assert api["CachePolicyId"] == CACHING_DISABLED  # answers are per shopper and per signature
    assert api["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER  # so the SigV4 host holds
    assert {"PUT", "DELETE"} <= set(api["AllowedMethods"])
    origins = {origin["Id"]: origin for origin in config["Origins"]}
    api_origin = origins[api["TargetOriginId"]]
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert ".execute-api." in json.dumps(api_origin["DomainName"]) and "OriginPath" not in api_origin
    site_origin = origins[config["DefaultCacheBehavior"]["TargetOriginId"]]
    assert "OriginAccessControlId" in site_origin


def test_only_invited_staff_with_mfa_sign_in(synthesized: Synthesized) -> None:
    pool = one(synthesized, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "ON" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    client = one(synthesized, "AWS::Cognito::UserPoolClient")
    assert client["GenerateSecret"] is False and client["AllowedOAuthFlows"] == ["code"]
    identity_pool = one(synthesized, "AWS::Cognito::IdentityPool")
    assert identity_pool["AllowUnauthenticatedIdentities"] is False
    assert identity_pool["CognitoIdentityProviders"][0]["ServerSideTokenCheck"] is True
    attachment = one(synthesized, "AWS::Cognito::IdentityPoolRoleAttachment")
    assert set(attachment["Roles"]) == {"authenticated"}


def test_the_staff_role_invokes_exactly_the_consoles_routes(synthesized: Synthesized) -> None:
    roles = synthesized.resources(STACK, "AWS::IAM::Role")
    [(role_id, role)] = [(k, v) for k, v in roles.items() if k.startswith("StaffRole")]
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["ForAnyValue:StringLike"] == {
        "cognito-identity.amazonaws.com:amr": "authenticated"
    }
    assert "cognito-identity.amazonaws.com:aud" in trust["Condition"]["StringEquals"]
    [policy] = [
        p["Properties"] for p in synthesized.resources(STACK, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role_id}]
    ]  # fmt: skip
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    routes = {json.dumps(resource).split("/v1/")[1].split('"')[0] for resource in statement["Resource"]}
    expected = {
        f"{method}{'/'.join('*' if p.startswith('{') else p for p in path.split('/'))}"
        for method, path in CONSOLE_ROUTES
    }
    assert routes == expected
    assert {f"GET{path.replace('{user_id}', '*')}" for method, path, _ in STAFF_ROUTES} <= routes
    assert not [r for r in routes if r.endswith("*") and r.count("/") < 2]  # no route-wide wildcard


def test_the_files_and_their_config_are_deployed_and_the_cache_invalidated(synthesized: Synthesized) -> None:
    [deployment] = synthesized.resources(STACK, "Custom::CDKBucketDeployment").values()
    assert deployment["Properties"]["DistributionPaths"] == ["/*"]
    assert len(deployment["Properties"]["SourceObjectKeys"]) == 2  # console/ and config.json
    assert "ConsoleUrl" in synthesized.templates[STACK]["Outputs"]


def test_the_twin_deploys_no_console_stack(tmp_path: Path, tiny_layers: Path) -> None:
    from app import build_app

    assembly = build_app(
        outdir=str(tmp_path),
        layers_dir=tiny_layers,
        context={"merchandiser:console": "false", "merchandiser:cdkNag": "false"},
    ).synth()
    assert STACK not in {stack.stack_name for stack in assembly.stacks}
