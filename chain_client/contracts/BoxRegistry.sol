// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.37;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title The network's registry of boxes
/// @notice A box is named by boxKey = sha256(its Ed25519 public key). The network (REGISTRAR_ROLE) records the
/// box's secp256k1 device address (which the box signed with its Ed25519 key off chain) and the owner paid.
contract BoxRegistry is AccessControl {
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    struct Box {
        address owner; // slot 0, with `registered`: the one slot a claim reads
        bool registered;
        address device; // slot 1
    }

    mapping(bytes32 boxKey => Box) private _boxes;

    event BoxRegistered(bytes32 indexed boxKey, address device, address owner);
    event BoxUpdated(bytes32 indexed boxKey, address device, address owner);
    event BoxRemoved(bytes32 indexed boxKey);

    /// @notice The box is already registered (use updateBox).
    error BoxAlreadyRegistered(bytes32 boxKey);
    /// @notice No box is registered under this key.
    error BoxNotRegistered(bytes32 boxKey);
    /// @notice A device or owner address of zero.
    error ZeroAddress();

    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @notice Register a new box.
    function registerBox(bytes32 boxKey, address device, address owner) external onlyRole(REGISTRAR_ROLE) {
        if (device == address(0) || owner == address(0)) revert ZeroAddress();
        if (_boxes[boxKey].registered) revert BoxAlreadyRegistered(boxKey);
        _boxes[boxKey] = Box(owner, true, device);
        emit BoxRegistered(boxKey, device, owner);
    }

    /// @notice Change a registered box's device address or owner.
    function updateBox(bytes32 boxKey, address device, address owner) external onlyRole(REGISTRAR_ROLE) {
        if (device == address(0) || owner == address(0)) revert ZeroAddress();
        if (!_boxes[boxKey].registered) revert BoxNotRegistered(boxKey);
        _boxes[boxKey] = Box(owner, true, device);
        emit BoxUpdated(boxKey, device, owner);
    }

    /// @notice Remove a box; what it was paid stays recorded by the reward contract.
    function removeBox(bytes32 boxKey) external onlyRole(REGISTRAR_ROLE) {
        if (!_boxes[boxKey].registered) revert BoxNotRegistered(boxKey);
        delete _boxes[boxKey];
        emit BoxRemoved(boxKey);
    }

    /// @notice The box's device address, owner and whether it is registered (zeros and false when not).
    function boxes(bytes32 boxKey) external view returns (address device, address owner, bool registered) {
        Box storage box = _boxes[boxKey];
        return (box.device, box.owner, box.registered);
    }

    /// @notice The owner paid for the box, or address(0) when it is not registered.
    function payee(bytes32 boxKey) external view returns (address) {
        Box storage box = _boxes[boxKey];
        return box.registered ? box.owner : address(0);
    }
}
