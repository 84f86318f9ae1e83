"""Legacy REST vehicle commands: catalogue, parameter validation and protobuf encoding.

``parse_command`` turns ``POST /api/1/vehicles/{tag}/command/{name}`` bodies into the
``car_server_pb2.Action`` / ``vcsec_pb2.UnsignedMessage`` the vehicle understands, and
``describe_message`` maps a signed-command payload back to its REST name.
"""

from flotta.commands.catalogue import CATALOGUE, COMMAND_NAMES, command_spec, parse_command
from flotta.commands.describe import INFOTAINMENT_DOMAIN, VCSEC_DOMAIN, describe_message
from flotta.commands.errors import CommandError
from flotta.commands.examples import EXAMPLE_BODIES
from flotta.commands.params import Param, parse_days_of_week
from flotta.commands.spec import (
    CMDS,
    CMDS_OR_CHARGING,
    CommandSpec,
    Domain,
    ParsedCommand,
    ProtoMessage,
)

__all__ = [
    "CATALOGUE",
    "CMDS",
    "CMDS_OR_CHARGING",
    "COMMAND_NAMES",
    "EXAMPLE_BODIES",
    "INFOTAINMENT_DOMAIN",
    "VCSEC_DOMAIN",
    "CommandError",
    "CommandSpec",
    "Domain",
    "Param",
    "ParsedCommand",
    "ProtoMessage",
    "command_spec",
    "describe_message",
    "parse_command",
    "parse_days_of_week",
]
