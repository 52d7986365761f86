"""The staff console in AWS: console/ in a private S3 bucket behind CloudFront (origin access control, HTTPS
only), the API under the same origin at /v1/*, and Cognito for the staff who may use it.

Who may use it: a Cognito user pool of staff (no self sign-up, MFA required, threat protection on) and an
identity pool that gives a signed-in staff member temporary IAM credentials of one role, allowed to invoke
exactly the routes the console calls (``constants.CONSOLE_ROUTES``); the page signs each request with
SigV4. Why an identity pool rather than a Cognito authorizer on the admin routes: those routes are already
IAM-authorized for the retailer's back office, which signs with its own role, and an API Gateway method
takes one kind of authorizer, so a Cognito authorizer would lock the back office out (or need every admin
route twice). With IAM for both, one authorization model covers servers and staff, and what staff may do
is an IAM policy that can be read and tested.

Why the API sits behind the same CloudFront distribution: same origin, so no CORS on the API. The page
signs for the API's own host; CloudFront sends the request to API Gateway with that host (the viewer's
Host header is not forwarded), so the signature holds. When the storefront routes require an API key,
``origin_api_key`` gives CloudFront the header to add: the browser never holds it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from stacks import checkov_skips as checkov
from stacks import constants as c

LOGS_OF_LOGS = (
    "This bucket receives the console's access logs; logging it too would need yet another bucket (or log "
    "into itself, which loops)."
)
NO_WAF = (
    "A WAF web ACL costs per ACL and rule; every page needs a signed-in staff member and every API call an "
    "IAM signature, and a retailer attaches its existing ACL at deploy time."
)
DEFAULT_CERTIFICATE = (
    "The distribution's default *.cloudfront.net certificate allows no minimum protocol setting "
    "(TLSv1.2_2021 applies once a retailer adds its own domain and ACM certificate)."
)
CDK_COPIER = (
    "CDK's own BucketDeployment function (a singleton it generates), run by CloudFormation at deploy time: "
)


def execute_api_path(path: str) -> str:
    """``/users/{user_id}/events`` → ``/users/*/events``: a path parameter is any one segment."""
    return "/".join("*" if part.startswith("{") else part for part in path.split("/"))


class ConsoleStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigateway.RestApi,
        console_dir: Path,
        origin_api_key: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Log delivery through the target bucket's policy, not the legacy LogDeliveryWrite ACL.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        logs = s3.Bucket(
            self,
            "ConsoleLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            # CloudFront's standard logs are still written with an ACL, which needs ACLs enabled here
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(c.CONSOLE_LOG_DAYS),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        Validations.of(logs).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=LOGS_OF_LOGS))
        checkov.skip_checks(logs, {"CKV_AWS_18": LOGS_OF_LOGS})
        self.site = s3.Bucket(
            self,
            "ConsoleSite",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,  # a console release can be rolled back file by file
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=Duration.days(30))],
            server_access_logs_bucket=logs,
            server_access_logs_prefix="site/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.api_host = f"{api.rest_api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
        self.distribution = cloudfront.Distribution(
            self,
            "ConsoleDistribution",
            comment="Merchandiser staff console",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
            ),
            additional_behaviors={
                f"/{c.API_STAGE}/*": cloudfront.BehaviorOptions(
                    origin=origins.HttpOrigin(
                        self.api_host,
                        protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
                        custom_headers={"x-api-key": origin_api_key} if origin_api_key else None,
                    ),
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    # the signature covers the API's host: every viewer header but Host goes on
                    origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                    response_headers_policy=cloudfront.ResponseHeadersPolicy.SECURITY_HEADERS,
                )
            },
            enable_logging=True,
            log_bucket=logs,
            log_file_prefix="cloudfront/",
        )
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(
                id="AwsSolutions-CFR1",
                reason="Staff sign in from wherever they work; Cognito, not geography, decides who gets in.",
            ),
            Acknowledgment(id="AwsSolutions-CFR2", reason=NO_WAF),
            Acknowledgment(id="AwsSolutions-CFR4", reason=DEFAULT_CERTIFICATE),
        )
        checkov.skip_checks(self.distribution, {"CKV_AWS_68": NO_WAF, "CKV_AWS_174": DEFAULT_CERTIFICATE})

        self.user_pool = cognito.UserPool(
            self,
            "StaffUserPool",
            user_pool_name=f"{c.APP_NAME}-staff",
            self_sign_up_enabled=False,  # an administrator invites staff
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            password_policy=cognito.PasswordPolicy(
                min_length=12,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            removal_policy=RemovalPolicy.RETAIN,
        )
        prefix = (
            self.node.try_get_context(c.CONTEXT_CONSOLE_DOMAIN_PREFIX)
            or f"merchandiser-staff-{Aws.ACCOUNT_ID}"
        )
        self.domain = self.user_pool.add_domain(
            "StaffSignIn", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=str(prefix))
        )
        console_url = f"https://{self.distribution.distribution_domain_name}/"
        self.client = self.user_pool.add_client(
            "ConsoleClient",
            generate_secret=False,  # a browser cannot keep one: authorization code with PKCE
            auth_flows=cognito.AuthFlow(user_srp=True),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL],
                callback_urls=[console_url],
                logout_urls=[console_url],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
            id_token_validity=Duration.hours(1),
            access_token_validity=Duration.hours(1),
        )
        self.identity_pool = cognito.CfnIdentityPool(
            self,
            "StaffIdentityPool",
            allow_unauthenticated_identities=False,
            cognito_identity_providers=[
                cognito.CfnIdentityPool.CognitoIdentityProviderProperty(
                    client_id=self.client.user_pool_client_id,
                    provider_name=self.user_pool.user_pool_provider_name,
                    server_side_token_check=True,
                )
            ],
        )
        self.staff_role = iam.Role(
            self,
            "StaffRole",
            description="Signed-in staff of the Merchandiser console: the console's API routes, nothing else",
            assumed_by=iam.FederatedPrincipal(
                "cognito-identity.amazonaws.com",
                conditions={
                    "StringEquals": {"cognito-identity.amazonaws.com:aud": self.identity_pool.ref},
                    "ForAnyValue:StringLike": {"cognito-identity.amazonaws.com:amr": "authenticated"},
                },
                assume_role_action="sts:AssumeRoleWithWebIdentity",
            ),
            max_session_duration=Duration.hours(1),
        )
        self.staff_role.add_to_policy(
            iam.PolicyStatement(
                actions=["execute-api:Invoke"],
                resources=[
                    api.arn_for_execute_api(method, execute_api_path(path), c.API_STAGE)
                    for method, path in c.CONSOLE_ROUTES
                ],
            )
        )
        api_in_findings = imported_name(api.rest_api_id, Stack.of(api))
        Validations.of(self.staff_role).acknowledge(
            *(
                Acknowledgment(
                    id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:"
                    f"<AWS::AccountId>:{api_in_findings}/{c.API_STAGE}/{method}{execute_api_path(path)}]",
                    reason=f"{method} {path}, a route the console calls: the '*' is its path parameter, one "
                    "segment (a user id, an item id, an experiment name), never another route.",
                )
                for method, path in c.CONSOLE_ROUTES
                if "{" in path
            )
        )
        cognito.CfnIdentityPoolRoleAttachment(
            self,
            "StaffRoles",
            identity_pool_id=self.identity_pool.ref,
            roles={"authenticated": self.staff_role.role_arn},
        )

        s3deploy.BucketDeployment(
            self,
            "ConsoleFiles",
            destination_bucket=self.site,
            sources=[
                s3deploy.Source.asset(str(console_dir)),
                # what the page reads first (the twin's `merchandiser console` answers its own)
                s3deploy.Source.json_data(
                    "config.json",
                    {
                        "mode": "aws",
                        "apiBase": f"/{c.API_STAGE}",
                        "apiHost": self.api_host,
                        "region": Aws.REGION,
                        "userPoolId": self.user_pool.user_pool_id,
                        "userPoolClientId": self.client.user_pool_client_id,
                        "identityPoolId": self.identity_pool.ref,
                        "cognitoDomain": self.domain.base_url(),
                    },
                ),
            ],
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=256,
        )
        # The deployment's function and role are the CDK's own (a singleton per stack), not ours to shape.
        copier = next(
            child
            for child in self.node.children
            if isinstance(child, Construct) and child.node.id.startswith("Custom::CDKBucketDeployment")
        )
        site_logical_id = self.resolve(self.site.bucket_arn)["Fn::GetAtt"][0]
        Validations.of(copier).acknowledge(*deployment_acknowledgments(site_logical_id))
        checkov.skip_checks(
            copier,
            {
                "CKV_AWS_115": CDK_COPIER + "one invocation per deployment, no concurrency to bound.",
                "CKV_AWS_116": CDK_COPIER + "a failure fails the deployment, which CloudFormation reports "
                "and rolls back; a dead-letter queue would hold nothing anyone acts on.",
                "CKV_AWS_117": CDK_COPIER + "it calls only S3 and CloudFront APIs; a VPC would add NAT or "
                "endpoints for nothing.",
                "CKV_AWS_173": CDK_COPIER + "its environment holds no secret; Lambda encrypts it at rest "
                "with its AWS-managed key.",
            },
        )
        copier_policy = copier.node.find_child("ServiceRole").node.find_child("DefaultPolicy")
        if not isinstance(copier_policy, Construct):
            raise TypeError("the CDK's BucketDeployment role has no DefaultPolicy to put checkov skips on")
        checkov.skip_checks(
            copier_policy,
            {
                "CKV_AWS_111": CDK_COPIER + "it writes and deletes the site bucket's objects and invalidates "
                "the distribution's cache, which takes no resource ARN.",
            },
        )

        CfnOutput(self, "ConsoleUrl", value=console_url)
        CfnOutput(self, "StaffUserPoolId", value=self.user_pool.user_pool_id)
        CfnOutput(self, "StaffSignInUrl", value=self.domain.base_url())


def imported_name(value: str, producer: Stack) -> str:
    """How cdk-nag spells a value from another stack: the name of the export the reference uses."""
    return str(producer.resolve(producer.export_value(value))["Fn::ImportValue"])


def deployment_acknowledgments(site_logical_id: str) -> list[Acknowledgment]:
    """The findings on CDK's BucketDeployment function, which copies console/ to the site bucket."""
    why = "CDK's BucketDeployment custom resource (a CDK-owned singleton function) copies console/ to the "
    grants = (
        ("Action::s3:GetObject*", "reads the console's files from the CDK asset bucket"),
        ("Action::s3:GetBucket*", "reads the asset and site buckets"),
        ("Action::s3:List*", "lists the asset and site buckets"),
        ("Action::s3:DeleteObject*", "removes the site's files the new version no longer has"),
        ("Action::s3:Abort*", "aborts its own multipart uploads"),
        ("Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
         "reads the console's asset from the CDK bootstrap bucket"),
        (f"Resource::<{site_logical_id}.Arn>/*", "writes every file of the site bucket"),
        ("Resource::*", "invalidates the distribution's cache (CreateInvalidation takes no resource ARN)"),
    )  # fmt: skip
    return [
        Acknowledgment(id=f"AwsSolutions-IAM5[{finding}]", reason=f"{why}site bucket: it {what}.")
        for finding, what in grants
    ] + [
        Acknowledgment(
            id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            reason=why + "site bucket at deploy time; it logs with the basic execution role.",
        ),
        Acknowledgment(
            id="AwsSolutions-L1",
            reason=why + "site bucket; its runtime is chosen by the CDK release, not by this app.",
        ),
    ]
