"""What moto's CloudFormation lacks for the twin's templates, added the way moto's own models are.

moto 5.2 has no ``AWS::Lambda::Alias`` (it warns and the alias resolves to nothing, so the API
methods and permissions that reference it fail); its ``AWS::Lambda::Version`` answers neither
``Ref`` nor ``Fn::GetAtt Version``; its ``AWS::Lambda::LayerVersion`` answers ``Ref`` with an
object instead of the ARN and ignores ``LayerName`` (the publish function's policy names both).
The serving functions are invoked through their ``live`` alias pointing at a published version
(the canary moves it), so the twin registers these three models; and moto has no CloudFormation
``AWS::CodeDeploy::Application`` / ``DeploymentGroup`` either (the canary's, whose names the publish
function's environment imports), so the twin adds them on moto's CodeDeploy backend, nor an
``AWS::EMRServerless::Application`` (the Spark training's, whose id start_training's environment holds),
added on moto's EMR Serverless backend. moto finds CloudFormation
models through ``CloudFormationModel.__subclasses__()``, a later definition of a type replacing
moto's. Each calls moto's own Lambda backend, as ``publish_layer_version``, ``publish_version``
and ``create_alias`` do.

One rule more: moto's Kinesis stream invokes the mapped function itself on every put, in Docker
(none here); the twin's poller is the event source mapping, so a mapping created on a Kinesis stream
is recorded by the Lambda backend (``ListEventSourceMappings`` shows it) but not attached to the stream.

All of this lives in moto's process: ``local_twin.moto_process`` calls ``register()`` before serving.
"""

from __future__ import annotations

from typing import Any

from moto.awslambda.models import EventSourceMapping, LambdaBackend, lambda_backends
from moto.cloudformation import parsing
from moto.codedeploy.models import codedeploy_backends
from moto.core.common_models import CloudFormationModel
from moto.emrserverless.models import emrserverless_backends
from moto.kinesis.models import kinesis_backends


class _Resource:
    """What every model below shares: its type, the property that names it, and a ``Ref`` (an ARN or a
    name) returned by ``create``. Each class still subclasses CloudFormationModel directly (beside this
    mixin): moto finds resource types through CloudFormationModel.__subclasses__(), which lists direct
    subclasses only."""

    TYPE = ""
    NAME_TYPE = ""

    def __init__(self, ref: str, **attributes: str) -> None:
        self.ref = ref
        self.attributes = attributes

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_TYPE

    @property
    def physical_resource_id(self) -> str:
        return self.ref

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name in self.attributes:
            return self.attributes[attribute_name]
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        return cls.create(cloudformation_json["Properties"], resource_name, account_id, region_name)

    @classmethod
    def create(cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str) -> Any:
        raise NotImplementedError


class TwinLayerVersion(_Resource, CloudFormationModel):
    TYPE, NAME_TYPE = "AWS::Lambda::LayerVersion", "LayerName"  # Ref: the layer version's ARN

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinLayerVersion:
        spec = {"Content": properties["Content"], "LayerName": properties.get("LayerName") or resource_name}
        for optional in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
            if optional in properties:
                spec[optional] = properties[optional]
        return cls(lambda_backends[account_id][region].publish_layer_version(spec).arn)


class TwinLambdaVersion(_Resource, CloudFormationModel):
    TYPE = "AWS::Lambda::Version"  # Ref: the qualified ARN; GetAtt Version: the version number

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Version"

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinLambdaVersion:
        function_name = str(properties["FunctionName"]).split(":")[-1]
        published = lambda_backends[account_id][region].publish_version(function_name)
        if published is None:
            raise ValueError(f"no function {function_name} to publish a version of")
        return cls(published.function_arn, Version=str(published.version))


class TwinLambdaAlias(_Resource, CloudFormationModel):
    TYPE, NAME_TYPE = "AWS::Lambda::Alias", "Name"  # Ref: the alias's ARN

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinLambdaAlias:
        backend = lambda_backends[account_id][region]
        function_name = str(properties["FunctionName"]).split(":")[-1]
        version = properties.get("FunctionVersion")
        if not version:
            # moto's AWS::Lambda::Version has no GetAtt Version: the version it just published is the latest
            versions = [
                v.version for v in backend.list_versions_by_function(function_name) if v.version != "$LATEST"
            ]
            version = max(versions, key=int) if versions else "$LATEST"
        alias = backend.create_alias(
            name=properties["Name"],
            function_name=function_name,
            function_version=str(version),
            description=properties.get("Description", ""),
            routing_config=None,  # type: ignore[arg-type]
        )
        return cls(alias.arn)


_create_event_source_mapping = LambdaBackend.create_event_source_mapping


def create_event_source_mapping_without_stream_trigger(
    backend: LambdaBackend, spec: dict[str, Any]
) -> EventSourceMapping:
    mapping = _create_event_source_mapping(backend, spec)
    for stream in kinesis_backends[backend.account_id][backend.region_name].streams.values():
        stream.lambda_event_source_mappings.pop(mapping.event_source_arn, None)
    return mapping


class TwinCodeDeployApplication(_Resource, CloudFormationModel):
    TYPE, NAME_TYPE = "AWS::CodeDeploy::Application", "ApplicationName"  # Ref: its name

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinCodeDeployApplication:
        name = properties.get("ApplicationName") or resource_name
        codedeploy_backends[account_id][region].create_application(
            name, properties.get("ComputePlatform", "Lambda"), properties.get("Tags", [])
        )
        return cls(name)


class TwinCodeDeployDeploymentGroup(_Resource, CloudFormationModel):
    TYPE, NAME_TYPE = "AWS::CodeDeploy::DeploymentGroup", "DeploymentGroupName"  # Ref: its name

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinCodeDeployDeploymentGroup:
        name = properties.get("DeploymentGroupName") or resource_name
        codedeploy_backends[account_id][region].create_deployment_group(
            application_name=str(properties["ApplicationName"]),
            deployment_group_name=name,
            deployment_config_name=properties.get("DeploymentConfigName"),
            ec2_tag_filters=None,
            on_premises_instance_tag_filters=None,
            auto_scaling_groups=None,
            service_role_arn=str(properties.get("ServiceRoleArn", "")),
            auto_rollback_configuration=properties.get("AutoRollbackConfiguration"),
            deployment_style=properties.get("DeploymentStyle"),
        )
        return cls(name)


class TwinEmrServerlessApplication(_Resource, CloudFormationModel):
    TYPE, NAME_TYPE = "AWS::EMRServerless::Application", "Name"  # Ref: its id; GetAtt ApplicationId, Arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("ApplicationId", "Arn")

    @classmethod
    def create(
        cls, properties: dict[str, Any], resource_name: str, account_id: str, region: str
    ) -> TwinEmrServerlessApplication:
        application = emrserverless_backends[account_id][region].create_application(
            name=properties.get("Name") or resource_name,
            release_label=str(properties["ReleaseLabel"]),
            application_type=str(properties["Type"]),
            client_token=resource_name,
            initial_capacity=properties.get("InitialCapacity"),  # type: ignore[arg-type]
            maximum_capacity=properties.get("MaximumCapacity"),  # type: ignore[arg-type]
            tags={tag["Key"]: tag["Value"] for tag in properties.get("Tags", [])},
            auto_start_configuration=properties.get("AutoStartConfiguration"),  # type: ignore[arg-type]
            auto_stop_configuration=properties.get("AutoStopConfiguration"),  # type: ignore[arg-type]
            network_configuration=properties.get("NetworkConfiguration"),
        )
        return cls(application.id, ApplicationId=application.id, Arn=application.arn)


def register() -> None:
    """Makes moto's CloudFormation see the models above (its type map is cached on first use) and
    leaves Kinesis streams without moto's own trigger."""
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    LambdaBackend.create_event_source_mapping = create_event_source_mapping_without_stream_trigger  # type: ignore[method-assign,assignment]
